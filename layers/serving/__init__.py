"""Serving: the models a function loads and how a request is answered. LiteRT only, never TensorFlow.

    litert.py      LiteModel: one LiteRT interpreter over model bytes
    runtime.py     ModelRuntime: source (polls the control document), loader (verified, warmed), the pure
                   unload policy, and the one-reference swap; InterpreterPool
    routing.py     choose(): sticky, weighted routing (pure)
    prediction.py  Prediction: the answer (no LiteRT import, so /fix and Slack blocks can use it)
    predictor.py   Predictor: route -> preprocess -> invoke -> reply; decoy and shadow off the hot path
    loader.py      Loader: a version as a head on a shared backbone, verified and warmed; score_all
    offpath.py     OffPath: the bounded queue (jobs and bytes) for that off-path work
    cache.py       PredictionCache: answers by (image sha256, model, version)
    rendezvous.py  Rendezvous: every version of the rendezvous set scores an image, a policy picks
    ensemble.py    Ensemble: the dating app's two live models, averaged

May import the core, the seams and the registry (to read versions); never the edge, the ledger, analysis,
matching or Slack. Import the submodules themselves: this package imports none of them, so importing one never loads LiteRT
unless it needs it.
"""
