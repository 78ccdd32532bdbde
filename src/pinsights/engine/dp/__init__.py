"""The differentially private mode (``build --privacy dp``): bounding, noise, accounting.

One concept per module:

- :mod:`.philox` — the keyed counter-based generator every noise draw comes from;
- :mod:`.seeding` — which key and which counter a (release, account, audience, cell) gets;
- :mod:`.inversion` — the exact discrete Gaussian the build uses (table inversion, 64-bit
  integer comparisons, exact refinement for undecided draws);
- :mod:`.sampler` — the integer-exact discrete Gaussian of Canonne, Kamath and Steinke, the
  independent exact implementation the tests compare it with;
- :mod:`.parameters` — the caps and noise scales, and the sensitivity they give a release;
- :mod:`.accounting` — zCDP of a release, its (ε, δ), the 30-day budget;
- :mod:`.ledger` — the store's record of charged releases;
- :mod:`.release` — noisy counts of one release and their post-processing;
- :mod:`.bounding` — per-user contribution bounding as engine-neutral Ibis expressions;
- :mod:`.step`, :mod:`.budget`, :mod:`.report` — the build's DP step, the budget check, the
  accounting report.

docs/privacy.md explains the design in words.
"""
