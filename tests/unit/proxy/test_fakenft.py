"""The fake nft: atomic transactions, reference checks, dump."""

from __future__ import annotations

import pytest

from kubesvc.proxy.nftables import NftError
from kubesvc.testing.fakenft import FakeNft

BASE = "add table ip t\nadd chain ip t a\nadd map ip t m { type mark : verdict; }\n"


def test_a_transaction_applies_all_or_nothing() -> None:
    f = FakeNft()
    f.apply(BASE)
    with pytest.raises(NftError):
        f.apply("add chain ip t b\nadd rule ip t a jump nowhere\n")
    assert "b" not in f.table("ip", "t").chains


@pytest.mark.parametrize("bad", [
    "add rule ip t a ip saddr @missing drop",
    "add element ip t m { 0x1 : goto missing }",
    "add element ip t missing { 1 }",
    "delete element ip t m { 0x9 }",
    "flush chain ip t missing",
])
def test_references_to_missing_objects_are_refused(bad: str) -> None:
    f = FakeNft()
    f.apply(BASE)
    with pytest.raises(NftError):
        f.apply(bad + "\n")


def test_deleting_a_referenced_chain_is_refused_until_the_reference_goes() -> None:
    f = FakeNft()
    f.apply(BASE + "add chain ip t b\nadd element ip t m { 0x1 : goto b }\n")
    with pytest.raises(NftError):
        f.apply("delete chain ip t b\n")
    f.apply("delete element ip t m { 0x1 }\ndelete chain ip t b\n")


def test_a_map_key_cannot_be_re_added_with_another_value_but_delete_then_add_works() -> None:
    f = FakeNft()
    f.apply(BASE + "add element ip t m { 0x1 : drop }\n")
    with pytest.raises(NftError):
        f.apply("add element ip t m { 0x1 : accept }\n")
    f.apply("delete element ip t m { 0x1 }\nadd element ip t m { 0x1 : accept }\n")
    assert "0x1 : accept" in f.dump("ip", "t")


def test_dump_is_nft_syntax() -> None:
    f = FakeNft()
    f.apply(BASE + "add chain ip t base { type nat hook prerouting priority dstnat; }\nadd rule ip t base jump a\n")
    text = f.dump("ip", "t")
    assert "table ip t {" in text and "type nat hook prerouting priority dstnat; policy accept;" in text
