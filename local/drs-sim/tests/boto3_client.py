"""boto3 against the DRS simulator: an independent client reads the same servers, jobs
and errors as aws-sdk-drs does.

Usage: python3 boto3_client.py http://127.0.0.1:PORT
Exits 0 when every check passes; prints the failing check and exits 1 otherwise.
The servers (app-000 .. app-249, tag dr:plan=shop) are seeded by the Rust test first.
"""

import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}")
        sys.exit(1)


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, None


def main(endpoint):
    drs = boto3.client(
        "drs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )

    # Pagination over more than 200 servers: every server exactly once.
    ids = []
    for page in drs.get_paginator("describe_source_servers").paginate(
        PaginationConfig={"PageSize": 60}
    ):
        ids.extend(server["sourceServerID"] for server in page["items"])
    check(len(ids) == 250, f"expected 250 servers, got {len(ids)}")
    check(len(set(ids)) == 250, "a server appeared twice")

    servers = drs.describe_source_servers(filters={"sourceServerIDs": ids[:2]})["items"]
    hostnames = sorted(s["sourceProperties"]["identificationHints"]["hostname"] for s in servers)
    check(hostnames == ["app-000", "app-001"], f"filtered hostnames {hostnames}")
    check(servers[0]["dataReplicationInfo"]["lagDuration"] == "PT0S", "lagDuration")

    # Quotas and conflicts, with DRS's error codes and statuses.
    code, status = error_code(
        lambda: drs.start_recovery(sourceServers=[{"sourceServerID": i} for i in ids[:101]])
    )
    check((code, status) == ("ValidationException", 400), f"101 servers gave {code} {status}")

    job = drs.start_recovery(
        sourceServers=[{"sourceServerID": i} for i in ids[:100]],
        isDrill=True,
        tags={"drplan:execution": "boto3"},
    )["job"]
    check(job["status"] == "PENDING", f"new job status {job['status']}")
    check(len(job["participatingServers"]) == 100, "100 participating servers")

    code, status = error_code(
        lambda: drs.start_recovery(sourceServers=[{"sourceServerID": ids[0]}])
    )
    check((code, status) == ("ConflictException", 409), f"busy server gave {code} {status}")

    # The job runs to COMPLETED (the Rust test runs the simulator fast).
    deadline = time.time() + 60
    while True:
        job = drs.describe_jobs(filters={"jobIDs": [job["jobID"]]})["items"][0]
        if job["status"] == "COMPLETED" or time.time() > deadline:
            break
        time.sleep(0.1)
    check(job["status"] == "COMPLETED", f"job still {job['status']}")
    check(job["tags"].get("drplan:execution") == "boto3", "job tags")
    statuses = {p["launchStatus"] for p in job["participatingServers"]}
    check(statuses == {"LAUNCHED"}, f"launch statuses {statuses}")

    events = [
        item["event"]
        for page in drs.get_paginator("describe_job_log_items").paginate(jobID=job["jobID"])
        for item in page["items"]
    ]
    check(events[0] == "JOB_START" and events[-1] == "JOB_END", f"log ends {events[:1]} {events[-1:]}")
    check(events.count("LAUNCH_START") == 100, "one LAUNCH_START per server")

    instances = [
        instance
        for page in drs.get_paginator("describe_recovery_instances").paginate()
        for instance in page["items"]
    ]
    check(len(instances) == 100, f"{len(instances)} recovery instances")
    check(all(i["isDrill"] for i in instances), "drill instances")

    arn = drs.describe_source_servers(filters={"sourceServerIDs": ids[:1]})["items"][0]["arn"]
    drs.tag_resource(resourceArn=arn, tags={"owner": "sre"})
    drs.untag_resource(resourceArn=arn, tagKeys=["dr:plan"])
    tags = drs.list_tags_for_resource(resourceArn=arn)["tags"]
    check(tags == {"owner": "sre"}, f"tags {tags}")

    terminate = drs.terminate_recovery_instances(
        recoveryInstanceIDs=[i["recoveryInstanceID"] for i in instances[:10]]
    )["job"]
    check(terminate["initiatedBy"] == "TERMINATE_RECOVERY_INSTANCES", "terminate job")
    print("boto3 checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
