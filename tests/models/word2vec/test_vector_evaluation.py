"""Analogy accuracy and word-pair correlation: equal to gensim's ``evaluate_word_analogies`` and
``evaluate_word_pairs`` on the shared benchmark files, with vectors where some answers are planted."""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from dlia.models.word2vec import AnalogyReport, EvaluationError, FormatError, KeyedVectors
from dlia.models.word2vec.evaluate import rankdata, spearman
from dlia.text import TextError

gensim_models = pytest.importorskip("gensim.models")
stats = pytest.importorskip("scipy.stats")

# ../shared/data beside the checkout, else the same files that gensim's wheel ships for its own tests
DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
if not (DATA / "questions-words.txt").exists():
    DATA = Path(gensim_models.__file__).parent.parent / "test" / "test_data"
QUESTIONS = DATA / "questions-words.txt"
WORDSIM = DATA / "wordsim353.tsv"
SIMLEX = DATA / "simlex999.txt"
pytestmark = pytest.mark.skipif(not QUESTIONS.exists(), reason="neither ../shared/data nor gensim's test data is there")

PLANTED = ("capital-common-countries", "family", "gram3-comparative", "gram8-plural")


def sections() -> list[tuple[str, list[list[str]]]]:
    out: list[tuple[str, list[list[str]]]] = []
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            out.append((line[1:].strip(), []))
        elif line.strip():
            out[-1][1].append(line.lower().split())
    return out


def with_variants(words: list[str], rng: numpy.random.Generator) -> list[str]:
    """``words`` (most of them), title-case variants of some, and noise words, shuffled: some variants
    come before their lower-case word (then they stand for it), some after."""
    words = list(rng.permutation(words))[: int(len(words) * 0.85)]
    variants = [w.title() for w in words[:60] if w.title() != w]
    words += variants + [f"noise{i}" for i in range(200)]
    return list(rng.permutation(words))


@pytest.fixture(scope="module")
def planted() -> tuple[KeyedVectors, object]:
    """Random vectors over the questions' words, except that in the ``PLANTED`` sections each answer
    is its partner plus the section's offset plus noise (so many, not all, questions are right)."""
    rng = numpy.random.default_rng(7)
    parsed = sections()
    words = with_variants(list(dict.fromkeys(w for _, qs in parsed for q in qs for w in q)), rng)
    index = {w: i for i, w in enumerate(words)}
    vectors = rng.standard_normal((len(words), 32))
    done = set()
    for name, questions in parsed:
        if name not in PLANTED:
            continue
        offset = rng.standard_normal(32)
        for a, b, c, d in questions:
            for x, y in ((a, b), (c, d)):
                if x in index and y in index and y not in done:
                    vectors[index[y]] = vectors[index[x]] + offset + 0.3 * rng.standard_normal(32)
                    done.add(y)
    # a case variant lies near its word (as "Paris" and "paris" do), so it would be the answer to
    # the questions holding that word unless the rules leave case variants out
    for w, i in index.items():
        if w.lower() != w and w.lower() in index:
            vectors[i] = vectors[index[w.lower()]] + 0.05 * rng.standard_normal(32)
    theirs = gensim_models.KeyedVectors(32)
    theirs.add_vectors(words, vectors.astype(numpy.float32))
    return KeyedVectors(words, vectors), theirs


def gensim_sections(theirs, path: Path, **kw) -> list[tuple[str, int, int]]:
    _, secs = theirs.evaluate_word_analogies(str(path), **kw)
    return [(s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in secs[:-1]]


@pytest.mark.parametrize("restrict_vocab", [100_000, 700])
def test_analogies_equal_gensim_section_by_section(planted, restrict_vocab: int) -> None:
    ours, theirs = planted
    report = ours.evaluate_analogies(QUESTIONS, restrict_vocab=restrict_vocab)
    assert [(s.name, s.correct, s.seen) for s in report.sections] == \
        gensim_sections(theirs, QUESTIONS, restrict_vocab=restrict_vocab, case_insensitive=True)
    score, _ = theirs.evaluate_word_analogies(str(QUESTIONS), restrict_vocab=restrict_vocab)
    assert report.accuracy == pytest.approx(score)
    assert len(report.sections) == 14 and report.total == 19544
    by_name = {s.name: s for s in report.sections}
    assert all(s.total == n for s, n in zip(report.sections, [len(q) for _, q in sections()]))
    if restrict_vocab > len(ours):  # the planted sections are mostly right, the others not
        assert all(by_name[n].accuracy > 0.4 for n in PLANTED)
        assert by_name["currency"].accuracy < 0.1 and by_name["gram7-past-tense"].accuracy < 0.1


def test_case_sensitive_analogies_equal_gensim(planted) -> None:
    ours, theirs = planted
    report = ours.evaluate_analogies(QUESTIONS, restrict_vocab=100_000, case_insensitive=False)
    assert [(s.name, s.correct, s.seen) for s in report.sections] == \
        gensim_sections(theirs, QUESTIONS, restrict_vocab=100_000, case_insensitive=False)
    assert report.seen < ours.evaluate_analogies(QUESTIONS, restrict_vocab=100_000).seen  # "Athens" is not "athens"


def small_file(tmp_path: Path) -> Path:
    """Two lower-case sections of the questions, 80 each (a file both methods answer quickly)."""
    lines = []
    for name, questions in sections():
        if name in ("family", "gram8-plural"):
            lines += [f": {name}"] + [" ".join(q) for q in questions[::7][:80]]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("method", ["add", "mul"])
def test_each_answer_is_the_top_query_result(planted, tmp_path: Path, method: str) -> None:
    # the oracle: one analogy() query per question, over the same restricted vocabulary
    ours, _ = planted
    path = small_file(tmp_path)
    n = 900
    report = ours.evaluate_analogies(path, restrict_vocab=n, case_insensitive=False, method=method)
    first = set(ours.index_to_key[:n])
    for section, (_, questions) in zip(report.sections, [(nm, qs) for nm, qs in sections() if nm in ("family", "gram8-plural")]):
        questions = questions[::7][:80]
        seen = [q for q in questions if set(q) <= first]
        # the file's question "a b c d" means d = b - a + c, which is analogy(b, a, c)
        right = sum(ours.analogy(b, a, c, method=method, restrict_vocab=n)[0][0] == d for a, b, c, d in seen)
        assert (section.correct, section.seen, section.total) == (right, len(seen), len(questions))
        assert right > 0


def test_report_sums_and_table(planted) -> None:
    ours, _ = planted
    report = ours.evaluate_analogies(QUESTIONS, restrict_vocab=100_000)
    assert isinstance(report, AnalogyReport)
    semantic, syntactic = report.sections[:5], report.sections[5:]
    assert [s.name for s in semantic][-1] == "family" and syntactic[0].name == "gram1-adjective-to-adverb"
    assert report.semantic.correct == sum(s.correct for s in semantic)
    assert report.semantic_accuracy == pytest.approx(sum(s.correct for s in semantic) / sum(s.seen for s in semantic))
    assert report.syntactic_accuracy == pytest.approx(sum(s.correct for s in syntactic) / sum(s.seen for s in syntactic))
    assert report.seen + report.skipped == report.total == 19544
    assert report.coverage == pytest.approx(report.seen / 19544)
    table = report.format().splitlines()
    assert table[0] == "| section | accuracy | correct / seen | seen / total |"
    family = report.sections[4]
    assert f"| family | {100 * family.accuracy:.1f}% | {family.correct} / {family.seen} | {family.seen} / 506 |" in table
    assert table[-3].startswith("| **total** |") and "**semantic**" in table[-5] and "**syntactic**" in table[-4]
    assert table[-1].startswith(f"{report.seen:,} of 19,544 questions seen") and "3CosAdd, case-insensitive" in table[-1]


@pytest.mark.parametrize("path", [WORDSIM, SIMLEX], ids=["wordsim353", "simlex999"])
@pytest.mark.parametrize("restrict_vocab", [300_000, 400])
def test_pairs_equal_gensim_and_scipy(path: Path, restrict_vocab: int) -> None:
    rng = numpy.random.default_rng(11)
    pairs = [line.split("\t")[:2] for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    words = with_variants(list(dict.fromkeys(w.lower() for p in pairs for w in p)), rng)
    vectors = rng.standard_normal((len(words), 12)).astype(numpy.float32)
    ours = KeyedVectors(words, vectors)
    theirs = gensim_models.KeyedVectors(12)
    theirs.add_vectors(words, vectors)
    report = ours.evaluate_pairs(path, restrict_vocab=restrict_vocab)
    pearson, rho, oov_percent = theirs.evaluate_word_pairs(str(path), restrict_vocab=restrict_vocab)
    assert report.spearman == pytest.approx(rho[0], abs=1e-9)
    assert report.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert 100 * report.oov_ratio == pytest.approx(oov_percent)
    assert report.total == len(pairs) and 0 < report.skipped < report.total
    assert report.format().startswith(f"{path.name}: Spearman ρ {report.spearman:.4f}, Pearson r {report.pearson:.4f} "
                                      f"({report.used:,} of {len(pairs):,} pairs")


def test_rankdata_and_spearman_equal_scipy_with_ties() -> None:
    rng = numpy.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 6, 40).astype(float)  # many ties
        y = rng.integers(0, 4, 40) + 0.5 * x
        numpy.testing.assert_array_equal(rankdata(x), stats.rankdata(x))
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert rankdata([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]


def test_evaluation_errors_name_the_file_and_line(tmp_path: Path, planted) -> None:
    ours, _ = planted
    bad = tmp_path / "bad.txt"
    bad.write_text(": family\nboy girl brother\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.txt: line 2 should be four words"):
        ours.evaluate_analogies(bad)
    bad.write_text("boy girl brother sister\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.txt: line 1 is a question before the first ': section' line"):
        ours.evaluate_analogies(bad)
    with pytest.raises(TextError, match="no such file"):
        ours.evaluate_analogies(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="unknown analogy method 'sub'"):
        ours.evaluate_analogies(QUESTIONS, method="sub")
    with pytest.raises(ValueError, match="restrict_vocab must be a positive number"):
        ours.evaluate_analogies(QUESTIONS, restrict_vocab=0)
    bad.write_text("# a comment\nboy\tgirl\tmany\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.txt: line 2 should be 'word1<TAB>word2<TAB>score'"):
        ours.evaluate_pairs(bad)
    bad.write_text("boy\tgirl\t3.5\nzzz\tqqq\t1\n", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"only 1 of its 2 pairs have both words among the first 300,000 words"):
        ours.evaluate_pairs(bad)


def test_pair_scores_must_be_finite_and_not_all_equal(tmp_path: Path) -> None:


    kv = KeyedVectors(["a", "b", "c", "d"], numpy.eye(4, dtype=numpy.float32) + 0.1)
    (tmp_path / "nan.txt").write_text("a\tb\t1\nc\td\tnan\na\tc\t2\n")
    with pytest.raises(FormatError, match="line 2"):
        kv.evaluate_pairs(tmp_path / "nan.txt")
    (tmp_path / "flat.txt").write_text("a\tb\t5\nc\td\t5\na\tc\t5\n")
    with pytest.raises(EvaluationError, match="all equal"):
        kv.evaluate_pairs(tmp_path / "flat.txt")
