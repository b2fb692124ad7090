"""Streamer's Python runtime shim: the loop Lambda's python runtimes run,
speaking the Lambda Runtime API with the standard library only. It imports
_HANDLER ("path/module.function") from LAMBDA_TASK_ROOT."""

import http.client
import importlib
import json
import os
import sys
import time
import traceback

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
THEN_NEXT = {"Streamer-Then-Next": "1"}
_conn = None


def call(method, path, body=None, headers=None):
    global _conn
    for attempt in (0, 1):
        if _conn is None:
            host, port = API.rsplit(":", 1)
            _conn = http.client.HTTPConnection(host, int(port))
        try:
            _conn.request(method, BASE + path, body=body, headers=headers or {})
            resp = _conn.getresponse()
            return resp.status, resp.headers, resp.read()
        except (http.client.HTTPException, ConnectionError):
            _conn.close()
            _conn = None
            if attempt:
                raise


def error_doc(exc):
    return json.dumps({
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    })


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline - int(time.time() * 1000))


def load_handler():
    spec = os.environ.get("_HANDLER", "")
    root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, root)
    module, _, func = spec.rpartition(".")
    if not module or not func:
        raise ValueError("Bad handler %r: want module.function" % spec)
    mod = importlib.import_module(module.replace("/", "."))
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise AttributeError("Handler %r missing on module %r" % (func, module))
    return fn


def main():
    try:
        handler = load_handler()
    except Exception as exc:  # the init error Lambda reports
        traceback.print_exc()
        call("POST", "/init/error", error_doc(exc), {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"})
        sys.exit(1)
    status, headers, body = call("GET", "/invocation/next")
    while True:
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        try:
            event = json.loads(body)
            result = handler(event, Context(headers))
            answer = ("/invocation/%s/response" % request_id, json.dumps(result))
        except Exception as exc:
            traceback.print_exc()
            answer = ("/invocation/%s/error" % request_id, error_doc(exc))
        # The answer's reply is the next invocation (Streamer-Then-Next):
        # one request per invocation. An answer the runtime refused stops
        # this process from the runtime's side; until then it asks as usual.
        status, headers, body = call("POST", answer[0], answer[1], THEN_NEXT)
        if status != 200:
            status, headers, body = call("GET", "/invocation/next")


if __name__ == "__main__":
    main()
