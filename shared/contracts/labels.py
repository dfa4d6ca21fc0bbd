"""The Japanese labels shown beside the public English values (docs/architecture.md, "Domain"): the words
of the source process, as tenants know them from the license main menu. The API carries them
(`*_label`) so that every client shows the same words."""
from __future__ import annotations

from shared.contracts.vocabulary import Kind, LicenseType, Usage

CONTRACT_STATUS = {"preparing": "新規準備中", "active": "提供中", "cancelled": "廃止済"}
LICENSE_STATUS = CONTRACT_STATUS  # a key shows the same three states as its contract
APPLICATION_STATUS = {"received": "受付済", "processing": "処理中", "completed": "完了", "rejected": "却下"}
KIND = {
    Kind.NEW: "新規申込",
    Kind.ADDITION: "追加申込",
    Kind.VM_COUNT_INCREASE: "仮想サーバー数追加",
    Kind.CANCELLATION: "廃止申込",
    Kind.CONTACT_CHANGE: "連絡先変更",
}
USAGE = {
    Usage.VIRTUAL_SERVER: "仮想サーバー",
    Usage.BARE_METAL: "ベアメタル(物理)サーバー",
    Usage.HYPERVISOR: "ハイパーバイザー基盤",
}
LICENSE_TYPE = {
    LicenseType.PER_SERVER: "サーバー単位ライセンス",
    LicenseType.DEDICATED_HYPERVISOR: "専用ハイパーバイザーライセンス",
}
ORDER_ID_STATUS = {"active": "有効", "cancelled": "廃止済"}
