"""mmrec: Ray-native multimodal music recommenders for playlist continuation.

Stages, in pipeline order (mmrec/stages.py; each a package with a typed config, a pure core and one `run.py`
that talks to Ray):

    demo-data   -> mmrec.demo        a synthetic corpus in the exact Spotify MPD format, plus modality sources
    prepare     -> mmrec.data        filtered item table and leave-one-out splits
    embed       -> mmrec.embed       one vector per song per modality (VAEs, sentence-transformers), fused
    train       -> mmrec.train       multimodal BERT4Rec / SASRec on Ray Train, the best epoch registered
    evaluate    -> mmrec.evaluate    full-catalogue Recall@k and NDCG@k on the test targets
    experiment  -> mmrec.experiment  baselines and ablations over seeds, the paper's tables
    tune        -> mmrec.tune        Ray Tune sweeps over train settings
    serve       -> mmrec.serve       the registered model behind Ray Serve: API and web page

Stages talk only through artifacts under one artifact root (a local path or s3://bucket/prefix); mmrec.layout
says where each lives and reads it (docs/artifacts.md).
"""

__version__ = "0.1.0"
