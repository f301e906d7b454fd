"""The demo model: phantom training data, the network, training, export and its model card.

Only :mod:`models.demo.net`, :mod:`models.demo.train` and what :func:`models.demo.build.train_demo`
imports lazily need torch; importing this package does not.
"""
