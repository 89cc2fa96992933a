"""Classify a stream of text out of core: HashingVectorizer rows, fed batch by batch to
partial_fit, with fastgd.SGDClassifier beside scikit-learn's (the pattern of scikit-learn's
out-of-core text example).

The documents are made here, with no download: each of three topics draws a few of its words
(4%) from a vocabulary of its own and the rest from one shared by all, so the classes overlap.
Both classifiers see the same sparse batches (CSR, 2^18 hashed features, --bits) once each and are
scored on held-out documents; the script prints their accuracy and the time spent in
partial_fit, and exits with an error if fastgd's accuracy falls short of scikit-learn's by
more than 0.02.

    python examples/out_of_core_text.py [--documents N] [--batch N] [--bits B]
"""
import argparse
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier as SkSGDClassifier

import fastgd

TOPICS = ("sports", "science", "finance")


def vocabulary(rng, size, prefix):
    return [f"{prefix}{i}" for i in rng.permutation(size)]


def documents(rng, count, topic_words, shared_words, length=40, own_share=0.04):
    """`count` documents and their topic indices: each word from its topic's vocabulary with
    probability own_share (a Zipf-like choice), else from the shared one."""
    labels = rng.integers(len(TOPICS), size=count)
    texts = []
    for label in labels:
        own = rng.random(length) < own_share
        words = topic_words[label]
        picks = np.minimum(rng.zipf(1.3, size=length) - 1, len(words) - 1)
        shared = rng.integers(len(shared_words), size=length)
        texts.append(" ".join(words[p] if o else shared_words[s] for o, p, s in zip(own, picks, shared)))
    return texts, labels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--documents", type=int, default=100_000, help="documents in the stream")
    parser.add_argument("--batch", type=int, default=5_000, help="documents a partial_fit call")
    parser.add_argument("--bits", type=int, default=18, help="the hashing space: 2**bits features")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    topic_words = [vocabulary(rng, 2_000, f"{topic}_") for topic in TOPICS]
    shared_words = vocabulary(rng, 20_000, "word")
    vectorizer = HashingVectorizer(n_features=2**args.bits, alternate_sign=False, norm="l2")
    test_texts, test_labels = documents(rng, 5_000, topic_words, shared_words)
    X_test = vectorizer.transform(test_texts)

    classes = np.arange(len(TOPICS))
    options = dict(loss="log_loss", alpha=1e-5, random_state=0)
    models = {"fastgd": fastgd.SGDClassifier(**options), "scikit-learn": SkSGDClassifier(**options)}
    fit_seconds = dict.fromkeys(models, 0.0)
    seen = 0
    while seen < args.documents:
        texts, labels = documents(rng, min(args.batch, args.documents - seen), topic_words, shared_words)
        X = vectorizer.transform(texts)  # CSR, 2^bits columns: never dense
        for name, model in models.items():
            start = time.perf_counter()
            model.partial_fit(X, labels, classes=classes)
            fit_seconds[name] += time.perf_counter() - start
        seen += len(texts)

    print(f"{seen:,} documents in batches of {args.batch:,}, HashingVectorizer(2^{args.bits}), one pass, log loss")
    print(f"{'':14}{'accuracy':>10}{'partial_fit':>14}")
    accuracy = {}
    for name, model in models.items():
        accuracy[name] = model.score(X_test, test_labels)
        print(f"{name:14}{accuracy[name]:>10.4f}{fit_seconds[name]:>13.2f}s")
    if accuracy["fastgd"] < accuracy["scikit-learn"] - 0.02:
        sys.exit("fastgd's accuracy falls short of scikit-learn's")


if __name__ == "__main__":
    main()
