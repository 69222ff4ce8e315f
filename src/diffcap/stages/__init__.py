"""The stages of a run (the contract is :mod:`diffcap.engine.stage`).

    prepare        download URLs, probe, the duration filter           Resources(cpus=0, io)
    short_caption  one sentence per video, for de-dup                  model
    dedup          greedy semantic de-dup over every candidate         barrier
    keyframes      semantic-aware keyframes into RUN_DIR/keyframes/    Resources(cpus=1)
    caption        DiffSW (slide) or fast captioning into a record     model

The registry (:mod:`diffcap.stages.registry`) names them and gives each command its list.
"""
