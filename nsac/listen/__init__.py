"""MUSHRA listening tests (ITU-R BS.1534-3) built from a bench folder: build, serve, store, analyse.

builder.py makes the test folder (spec.py describes it; stimuli.py and loudness.py make the anchors and match
levels), server.py serves it with static/, store.py keeps the ratings, analysis.py screens and summarises them,
report_section.py puts the results into the bench report, cli.py is `nsac listen`.
"""
