"""Serving: the models a function loads and how a request is answered. LiteRT only, never TensorFlow.

    litert.py      LiteModel: one LiteRT interpreter over model bytes
    runtime.py     ModelRuntime: source (polls the control document), loader (verified, warmed), the pure
                   unload policy, and the one-reference swap; InterpreterPool
    routing.py     choose(): sticky, weighted routing (pure)
    prediction.py  Prediction: the answer (no LiteRT import, so /fix and Slack blocks can use it)
    predict.py     Predictor: route -> preprocess -> invoke -> reply; decoy and shadow off the hot path
    offpath.py     OffPath: the bounded queue (jobs and bytes) for that off-path work

Import the submodules themselves: this package imports none of them, so importing one never loads LiteRT
unless it needs it.
"""
