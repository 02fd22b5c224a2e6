#!/usr/bin/env python3
"""Writes Tests/DetectionTests/Fixtures/isolation_forest.json: a small data set and the anomaly
scores scikit-learn's IsolationForest gives it, so that the Swift forest can be checked against
the reference implementation without Python at test time.

    pip install scikit-learn numpy
    python3 scripts/isolation_forest_fixture.py

The data: 400 training points in 5 dimensions drawn like window features (a correlated
Gaussian cloud, one heavy-tailed column, one bounded ratio), with 2 % contamination, and 120
test points of which a quarter are outliers of graded strength (so that the ranking, not only
the extremes, is tested). Values are rounded to 6 decimals before fitting, so that Swift reads
exactly the numbers sklearn saw. Scores are `-score_samples(x)`: in (0, 1], higher = more
anomalous, the quantity `IsolationForest.score` in Swift returns.
"""
import json
import pathlib

import numpy as np
from sklearn.ensemble import IsolationForest

SEED = 20240809
TREES = 200
MAX_SAMPLES = 128


def cloud(rng, n):
    base = rng.multivariate_normal(
        mean=[0.0, 1.0, -2.0],
        cov=[[1.0, 0.6, 0.2], [0.6, 1.0, 0.3], [0.2, 0.3, 0.5]],
        size=n,
    )
    heavy = rng.standard_t(df=4, size=(n, 1)) * 0.5 + 5.0
    ratio = rng.beta(8, 8, size=(n, 1))
    return np.hstack([base, heavy, ratio])


def main():
    rng = np.random.default_rng(SEED)
    train = cloud(rng, 400)
    contaminated = rng.choice(400, size=8, replace=False)
    train[contaminated, 0] += rng.choice([-1, 1], size=8) * rng.uniform(4, 7, size=8)

    inliers = cloud(rng, 90)
    strength = np.linspace(1.0, 8.0, 30)
    outliers = cloud(rng, 30)
    directions = rng.normal(size=(30, 5))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    outliers += directions * strength[:, None]
    test = np.vstack([inliers, outliers])

    train = np.round(train, 6)
    test = np.round(test, 6)
    forest = IsolationForest(n_estimators=TREES, max_samples=MAX_SAMPLES, random_state=SEED).fit(train)
    scores = -forest.score_samples(test)

    out = {
        "source": "scripts/isolation_forest_fixture.py (scikit-learn IsolationForest)",
        "trees": TREES,
        "max_samples": MAX_SAMPLES,
        "dimensions": train.shape[1],
        "train": train.tolist(),
        "test": test.tolist(),
        "sklearn_scores": [round(float(s), 6) for s in scores],
    }
    path = pathlib.Path(__file__).resolve().parent.parent / "Tests/DetectionTests/Fixtures/isolation_forest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({len(train)} training points, {len(test)} test points)")


if __name__ == "__main__":
    main()
