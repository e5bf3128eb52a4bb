"""The paper's tables, measured by ScanSeal on this machine (`make bench`, `bench/evaluate.py`).

Every section is a module of this package with the same three names:

``TITLE: str``
    The heading of its section in docs/RESULTS.md.
``run(quick: bool, work: Path) -> dict[str, Any]``
    Measures and returns JSON-serializable results: the figures, the paper's figures beside
    them, and what was run. ``quick`` makes a small version (the whole quick evaluation takes
    at most two minutes, so `make test` runs it and the code cannot rot); ``work`` is a scratch
    directory the caller removes afterwards. Servers bind to 127.0.0.1 and are stopped by PID
    before ``run`` returns, also on failure.
``render(result: dict[str, Any], figures: Path) -> str``
    Markdown for the section (tables, a reading of them, links to plots) from a stored result
    alone, so docs/RESULTS.md can be re-rendered without measuring again. Plots are matplotlib
    PNGs written into ``figures`` and linked relative to docs/.

Optional names: ``BUDGET_S`` (the section's share of the 30-minute full run; the driver marks a
run that exceeds it) and, in the result, ``claims``: a list of ``{"what", "paper", "scanseal",
"met"}`` rows (``met`` true, false or null) for the summary table at the top of RESULTS.md
(``evaluation._common.claim`` builds one); a module may instead define
``claims(result) -> list`` to compute them from a stored result at render time.

The driver adds to each stored result the machine, the date, the load average before and after,
the duration and the command line, and renders them under every section.
"""

from __future__ import annotations

#: Section modules in the order they appear in docs/RESULTS.md.
SECTIONS: tuple[str, ...] = (
    "table1_detector",
    "table2_transfer",
    "table3_security",
    "table4_scalability",
    "table5_resources",
    "simulation",
    "components_seal",
    "components_storage",
    "components_ledger",
    "components_gateway",
    "components_dicom",
    "components_detect",
)
