"""moto_server with one request at a time.

moto's own server runs every request in its own thread without a lock, so
concurrent DynamoDB calls on one item race inside moto (lost ADDs, and
TransactWriteItems restoring a stale copy of the table on cancel). Real
DynamoDB makes each call atomic. Serialising requests gives the emulator the
same guarantee, so the concurrency cases of the conformance suite test our
adapter, not moto's races. Usage: moto_atomic.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


class OneAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # moto answers with a list, so the whole response is built under the lock.
            return list(self.app(environ, start_response))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, OneAtATime(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
