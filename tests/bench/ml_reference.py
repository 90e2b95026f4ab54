"""The reference for the control failure model: scikit-learn's LogisticRegression on the
same features and split (CSV written by tests/bench/ml.rs), standardised on the fitting rows,
with the same L2 penalty (smartcore minimises sum(log loss) + alpha/2 |w|^2, scikit-learn
C * sum(log loss) + 1/2 |w|^2, so C = 1 / alpha; alpha 0 is no penalty). Prints the test
rows' ROC AUC."""

import csv
import sys

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler


def main(path, alpha):
    fit_x, fit_y, test_x, test_y = [], [], [], []
    with open(path, newline="") as file:
        rows = csv.reader(file)
        next(rows)
        for row in rows:
            features = [float(value) for value in row[2:]]
            (fit_x if row[0] == "fit" else test_x).append(features)
            (fit_y if row[0] == "fit" else test_y).append(int(row[1]))
    scaler = StandardScaler().fit(fit_x)
    if alpha > 0:
        model = LogisticRegression(C=1.0 / alpha, max_iter=10_000)
    else:
        model = LogisticRegression(penalty=None, max_iter=10_000)
    model.fit(scaler.transform(fit_x), fit_y)
    print(roc_auc_score(test_y, model.predict_proba(scaler.transform(test_x))[:, 1]))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
