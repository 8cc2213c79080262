"""Benchmarks: sfncopy against rclone, the AWS CLI and the original 2018 design (issue 6).

Never part of the test run. ``python -m bench`` (or ``./scripts/bench.sh``) runs everything and writes
``bench/results/latest.json`` plus a printed table. Module map:

- ``workloads``     what is copied: the W1 "mixed" data set, synthetic listings, heavy-tailed sizes
- ``local_s3``      the one local S3 every contender shares (the sfncopy emulator, or a bare moto fallback)
- ``contenders``    sfncopy, rclone, the AWS CLI and the 2018 baseline, each run, timed and verified
- ``baseline2018``  the 2018 design's algorithm, written from its description
- ``planner_scale`` 1,000,000 listing entries through sfncopy's real planning path (time, memory, profile)
- ``finalizer_scale`` 1,000,000 and 10,000,000 report rows through sfncopy's real finalizer (memory, time)
- ``balance``       predicted makespan / ideal for sfncopy's planning and for the 2018 algorithm
- ``requests``      S3 requests per object copied, by category, against the minimum
- ``run``           the command that runs them all and prints the table
"""
