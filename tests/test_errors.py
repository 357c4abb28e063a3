"""mocse_tf.errors.check_choice: the one check of every fixed set of names."""

import pytest

from mocse_tf.errors import UsageError, check_choice, describe_error


def test_a_known_name_is_returned_and_an_unknown_one_shows_the_value_and_the_choices():
    assert check_choice("norm", "l2", ("linf", "l2")) == "l2"
    with pytest.raises(UsageError) as caught:
        check_choice("norm", "l1", ("linf", "l2"))
    assert str(caught.value) == "unknown norm 'l1'; choose one of linf, l2"
    assert isinstance(caught.value, ValueError)


def test_a_message_names_settings_in_python_terms_and_the_cli_shows_them_as_flags():
    err = UsageError("`output_dir` 'x' belongs to bin/train; choose another `output_dir` or set `overwrite`")
    assert str(err) == "`output_dir` 'x' belongs to bin/train; choose another `output_dir` or set `overwrite`"
    assert err.render() == "--output_dir 'x' belongs to bin/train; choose another --output_dir or set --overwrite"
    assert UsageError("no `models` given").render({"models": "model"}) == "no --model given"


def test_describe_error_gives_the_type_and_the_first_line_of_the_message():
    assert describe_error(OSError("\ndisk full\nat /x")) == "OSError: disk full"
    assert describe_error(KeyError()) == "KeyError: "
