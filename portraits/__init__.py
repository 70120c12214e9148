"""The synthetic portrait generator: the project's own data, since no dataset can be downloaded.

    synth.py   portrait(seed) and its cues, the drifted look (site crews), samples and the showcase CLI
               (`python -m portraits.synth showcase DIR`)

It serves the bootstrap (training_job.datasets), the tests, the benchmarks and the demo. It imports only
layers.config (the class names) and Pillow; the function images do not ship it.
"""
