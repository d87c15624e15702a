"Mutation tests for exercise set 08: the checks accept a finished review and reject unfinished or untestable ones."
import re

from mlre_lab.checks import reviews as R

from .conftest import ROOT
from .mutation import mutation_tests

EXAMPLE = R.document_text(ROOT / "examples" / "reviews" / "grokking.ipynb")
_, _ROWS = R.parse_markdown_table(R.answer_text(R.split_sections(EXAMPLE)[1][-1].body))
CLAIMS = [tuple(row) for row in _ROWS]


def review():
    return EXAMPLE


def _replace_answer(number: int, answer: str):
    "The example with question `number`'s answer replaced by `answer`."
    heading = f"## {number}. {R.QUESTIONS[number - 1]}"
    start = EXAMPLE.index(heading)
    stop = EXAMPLE.index("\n## ", start + 1)
    return lambda: EXAMPLE[:start] + f"{heading}\n\n{answer}\n" + EXAMPLE[stop:]



REVIEW_MUTANTS = {
    "a question left as TODO": _replace_answer(3, "TODO"),
    "a question with only its prompt": _replace_answer(5, "> The smallest model, data and budget."),
    "a one-phrase answer": _replace_answer(2, "Attention plus weight decay."),
    "a question dropped": lambda: re.sub(r"## 4\. .*?(?=\n## 5\.)", "", EXAMPLE, flags=re.DOTALL),
    "a question reworded": lambda: EXAMPLE.replace(R.QUESTIONS[0], "What problem does it solve?"),
    "a claims row left TODO": lambda: EXAMPLE.rstrip() + "\n| TODO | TODO | TODO |\n",
    "no claims section": lambda: EXAMPLE[:EXAMPLE.index("## Claims")],
    "a notebook path instead of the text": lambda: ROOT / "examples" / "reviews" / "grokking.ipynb",
}


def _claims_with(index: int, value: str):
    return lambda: [tuple(value if i == index else cell for i, cell in enumerate(row)) if n == 0 else row
                    for n, row in enumerate(CLAIMS)]


CLAIMS_MUTANTS = {
    "two claims": lambda: CLAIMS[:2],
    "evidence without a location": _claims_with(1, "the paper shows it clearly"),
    "a test without a metric": _claims_with(2, "we would run it and look at the curves"),
    "a test without a number": _claims_with(2, "validation accuracy goes up eventually"),
    "an empty claim": _claims_with(0, ""),
    "rows of two cells": lambda: [row[:2] for row in CLAIMS],
}

CHECKS = {
    "review": (R.check_review, review, REVIEW_MUTANTS),
    "claims": (R.check_claims, lambda: CLAIMS, CLAIMS_MUTANTS),
}

(test_every_check_is_mutation_tested, test_reference_passes, test_stub_rejected,
 test_mutant_rejected) = mutation_tests(CHECKS, R)


def test_the_pass_line_says_what_was_not_graded(capsys):
    R.check_claims(lambda: CLAIMS)
    assert "a reader judges whether the answers are right" in capsys.readouterr().out
