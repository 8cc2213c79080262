"""Planning in shards: the planner's work cut by key range, so that 10^8 objects plan within minutes.

    prepare.py    validate the config, cut the sources' key space (partition.py), write the shards' items
    shard.py      one shard (a Distributed Map item): list its range in every source and target, route and
                  decide (routing.py, planning.py), write bounded segments, splits, skips and a summary
    assemble.py   bin every shard's segments and split chunks onto the workers (binning.py), write each
                  worker's list of payload references and the plan's index
    publish.py    hand the plan to the copy stage: the workers' lists of WorkItems and plan/index.json only
                  (payload and skip files are read where the shards and the assembler wrote them)
    inventory.py  sources given as an S3 Inventory report or a CSV of keys instead of a listing
    keyspace.py   key ranges and points between keys, in S3's listing order
    listing.py    the ListObjectsV2 requests these steps send
    layout.py     where their files go, and the records they hold
"""
