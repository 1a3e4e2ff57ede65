import os

import devnode
from devnode.web import WebServiceInterface
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response


class Web(WebServiceInterface):
    """GET /greet?name=joe calls Greeting.greet (or $GREETING_SERVICE's: mixed.lymph.yml points
    it at the C Greeting) and answers its greeting, with the request's X-Trace-Id."""

    url_map = Map([
        Rule('/greet', endpoint='greet'),
        Rule('/health', endpoint='health'),
    ])

    def greet(self, request):
        name = request.args.get('name')
        if not name:
            return Response('want ?name=\n', status=400)
        print('About to greet %s' % name)
        try:
            return Response(self.proxy(os.environ.get('GREETING_SERVICE', 'Greeting'), timeout=2).greet(name=name))
        except devnode.Timeout:
            return Response('Greeting timed out\n', status=504)
        except devnode.NotFound:
            return Response('no Greeting runs\n', status=503)
        except devnode.RemoteError as e:
            return Response('Greeting failed: %s\n' % e, status=502)

    def health(self, request):
        return Response('ok')
