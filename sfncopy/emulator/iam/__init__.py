"""IAM enforcement for the emulator's S3: requests signed with a role session's keys are judged as AWS would.

moto 5.2.5 checks IAM only in part (``moto/iam/access_control.py``: no copy-source read check, no implied
tagging checks, no ``StringLike``, HeadBucket checked as a nonexistent ``s3:HeadBucket``, an Allow whose
condition fails turned into a Deny) and only when switched on for every request. This package is built beside
it and is on by default (``Emulator(enforce_iam=False)``, ``sfncopy emulator --no-iam`` or
``SFNCOPY_EMULATOR_IAM=off`` turn it off):

- ``conditions.py``  condition operators against a request context (pure)
- ``policy.py``      statements and documents: explicit deny, allow, default deny (pure)
- ``s3_actions.py``  an S3 request -> the checks it needs: action, resource ARN, context keys (pure)
- ``sessions.py``    what moto holds: AssumeRole sessions, role policies, bucket owners; Lambda's role keys
- ``enforcement.py`` the middleware's question: pass the request on, or answer 403 AccessDenied with why

Not checked: bucket policies, ACLs, KMS key policies, SCPs, permissions boundaries, requests to services other
than S3, signatures, session expiry.
"""
