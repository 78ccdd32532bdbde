"""The differentially private mode (``build --privacy dp``): bounding, noise, accounting.

One concept per module:

- :mod:`.philox` — the keyed counter-based generator every noise draw comes from;
- :mod:`.seeding` — which key and which counter a (release, account, audience, cell) gets;
- :mod:`.sampler` — the integer-exact discrete Gaussian (Canonne, Kamath and Steinke) on it;
- :mod:`.parameters` — the caps and noise scales, and the sensitivity they give a release;
- :mod:`.accounting` — zCDP of a release, its (ε, δ), the 30-day budget;
- :mod:`.ledger` — the store's record of charged releases;
- :mod:`.release` — noisy counts of one release and their post-processing;
- :mod:`.bounding` — per-user contribution bounding as engine-neutral Ibis expressions.

docs/privacy.md explains the design in words.
"""
