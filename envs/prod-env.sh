# sfncopy environment "prod": read by generator/settings.py (never executed; 'export name=value' lines only,
# no logic, no secrets). A variable of the same name in the process environment overrides the value here.
# Bucket lists are space separated; an entry "bucket/prefix/" limits the functions' rights to that prefix.
export stack_name=sfncopy-prod
export region=us-east-1
export num_copy_lambda_workers=8
export max_payload_size_per_lambda_execution_in_mb=20480
export max_objects_per_payload=2000
export source_buckets="example-sfncopy-prod-source/media/"
export target_buckets="example-sfncopy-prod-video example-sfncopy-prod-images"
export package_bucket=example-sfncopy-prod-packages
# An existing bucket (its lifecycle and policy are managed outside this stack).
export manifest_bucket=example-sfncopy-prod-manifests
export manifest_prefix=sfncopy/
export kms_key_arns="arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
export planner_memory_mb=2048
export planner_timeout_seconds=900
export worker_memory_mb=1024
export worker_timeout_seconds=900
export worker_threads=32
export finalizer_memory_mb=2048
export finalizer_timeout_seconds=900
export log_retention_days=90
