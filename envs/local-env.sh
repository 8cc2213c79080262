# sfncopy environment "local": read by generator/settings.py (never executed; 'export name=value' lines only,
# no logic, no secrets). A variable of the same name in the process environment overrides the value here.
# Bucket lists are space separated; an entry "bucket/prefix/" limits the functions' rights to that prefix.
# The embedded emulator (sfncopy emulator): every AWS client goes to AWS_ENDPOINT_URL with dummy keys.
export AWS_ENDPOINT_URL=http://127.0.0.1:4566
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
export stack_name=sfncopy-local
export region=us-east-1
export num_copy_lambda_workers=4
# Small caps so the demo's larger objects exercise multipart copies and split chunks.
export max_payload_size_per_lambda_execution_in_mb=64
export max_objects_per_payload=200
export copy_cutoff_mb=16
export part_size_mb=5
# Scoped to prefixes as production does: the roles may read only media/ and write only the four target
# folders of examples/demo-copy.json (and the emulator enforces it, as IAM does).
export source_buckets="sfncopy-demo-source/media/"
export target_buckets="sfncopy-demo-target/images/ sfncopy-demo-target/videos/ sfncopy-demo-target/data/ sfncopy-demo-target/reports/"
export package_bucket=sfncopy-local-packages
export manifest_bucket=create
export manifest_prefix=sfncopy/
export planner_memory_mb=512
export planner_timeout_seconds=120
export worker_memory_mb=512
export worker_timeout_seconds=10
export worker_threads=8
export finalizer_memory_mb=512
export finalizer_timeout_seconds=120
export log_retention_days=1
