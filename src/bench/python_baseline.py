# drplan bench: the Python 3 + boto3 baseline, a custom-runtime loop like Lambda's.
import http.client, json, os
import boto3
from botocore.config import Config

call = json.loads(os.environ["BENCH_CALL"])
client = boto3.client(call["service"], config=Config(s3={"addressing_style": "path"},
                                                      retries={"max_attempts": 1}))
api = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    answer = api.getresponse()
    event = json.loads(answer.read())
    request_id = answer.getheader("Lambda-Runtime-Aws-Request-Id")
    try:
        result = getattr(client, call["operation"])(**call["params"])
        if "Body" in result:
            result["Body"].read()
        body, path = json.dumps({"ok": True}), "response"
    except Exception as error:
        body, path = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}), "error"
    api.request("POST", f"/2018-06-01/runtime/invocation/{request_id}/{path}", body=body,
                headers={"Content-Type": "application/json"})
    api.getresponse().read()
