import devnode


class Greeting(devnode.Interface):

    @devnode.rpc()
    def greet(self, name):
        """Returns a greeting, prints it and emits `greeted`."""
        if not isinstance(name, str) or not name:
            raise ValueError('name must be a non-empty string')
        print('Saying hi to %s' % name)
        self.emit('greeted', {'name': name})
        return u'Hi, %s!' % name
