import devnode


class Listen(devnode.Interface):

    @devnode.event('greeted')
    def on_greeted(self, event):
        print('Somebody greeted %s' % event['name'])
