"""mmrec: Ray-native multimodal music recommenders for playlist continuation.

Stages (each a package with a typed config, a pure core and one `run.py` that talks to Ray):

    demo-data  -> mmrec.demo      a synthetic corpus in the exact Spotify MPD format, plus modality sources
    prepare    -> mmrec.data      (planned) filtered item table and leave-one-out splits
    embed      -> mmrec.embed     (planned) one vector per song per modality, fused
    train      -> mmrec.train     (planned) multimodal BERT4Rec on Ray Train
    tune, evaluate, serve         (planned)

Stages talk only through artifacts under one artifact root (a local path or s3://bucket/prefix).
"""

__version__ = "0.1.0"
