# sfncopy environment "uat": read by generator/settings.py (never executed; 'export name=value' lines only,
# no logic, no secrets). A variable of the same name in the process environment overrides the value here.
# Bucket lists are space separated; an entry "bucket/prefix/" limits the functions' rights to that prefix.
export stack_name=sfncopy-uat
export region=us-east-1
export num_copy_lambda_workers=4
export max_payload_size_per_lambda_execution_in_mb=10240
export max_objects_per_payload=1000
export source_buckets="example-sfncopy-uat-source"
export target_buckets="example-sfncopy-uat-target"
export package_bucket=example-sfncopy-uat-packages
export manifest_bucket=create
export manifest_prefix=sfncopy/
export kms_key_arns=""
export planner_memory_mb=1024
export planner_timeout_seconds=900
export worker_memory_mb=1024
export worker_timeout_seconds=900
export worker_threads=16
export finalizer_memory_mb=1024
export finalizer_timeout_seconds=900
export log_retention_days=30
# Optional: each run's summary (status, counts, bytes, report or cause) is published to an SNS topic:
# "create" (the stack's own, <stack_name>-runs; subscribe to it after deploying) or an existing topic's ARN.
export notification_topic=create
# Optional: schedule_<name>="<rate(...) or cron(...)> s3://bucket/stored-config.json [IANA time zone]" starts a
# run of that stored config through EventBridge Scheduler ('sfncopy schedule add|remove' edits these lines).
export schedule_nightly="cron(0 2 * * ? *) s3://example-sfncopy-uat-configs/nightly.json Europe/Paris"
