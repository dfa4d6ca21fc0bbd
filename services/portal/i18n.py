"""The portal's words, Japanese first (the language of the source process) and English.
Values of the API (statuses, usages, license types, kinds) take their labels from
shared/contracts/labels.py; rule refusals are said here by reason code. What a tenant reads names
no rule number: the comments beside each text keep the link to R1–R12 (docs/architecture.md, "Rules")."""
from __future__ import annotations

from shared.contracts import labels

LANGUAGES = ("ja", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # page frame
    "title": ("Arcserveライセンス メインメニュー", "Arcserve license main menu"),
    "skip": ("本文へ移動", "Skip to content"),
    "switch_language": ("English", "日本語"),
    "sign_in": ("サインイン", "Sign in"),
    "sign_out": ("サインアウト", "Sign out"),
    "api_key": ("APIキー", "API key"),
    "api_key_help": ("テナントのAPIキーを入力してください。キーはブラウザのスクリプトからは読めない暗号化Cookieにのみ保持されます。",
                     "Enter your tenant's API key. It is kept only in an encrypted cookie that no script can read."),
    "bad_key": ("APIキーが正しくないか、失効しています。", "The API key is wrong or has been revoked."),
    "signed_out": ("サインアウトしました。", "You have signed out."),
    "session_expired": ("セッションの有効期限が切れました。もう一度サインインしてください。",
                        "Your session has ended; please sign in again."),
    "csrf": ("フォームの有効期限が切れました。もう一度お試しください。", "The form has expired; please try again."),
    "unavailable": ("サービスに接続できません。しばらくしてから再度お試しください。",
                    "The service cannot be reached; please try again shortly."),
    "rate_limited": ("リクエストが多すぎます。しばらくしてから再度お試しください。",
                     "Too many requests; please try again shortly."),
    "too_many_failures": ("APIキーの誤りが多すぎます。しばらくしてから再度お試しください。",
                          "Too many wrong API keys; please try again later."),
    "not_found": ("見つかりません。", "Not found."),
    "back": ("メインメニューへ戻る", "Back to the main menu"),
    # main menu
    "menu": ("メインメニュー", "Main menu"),
    "no_contracts": ("ご契約はまだありません。「新規申込」から始めてください。",
                     "You have no contracts yet. Start with a new application."),
    "col_no": ("No.", "No."),
    "col_type": ("ライセンスタイプ", "License type"),
    "col_content": ("内容", "Content"),
    "col_applied": ("申込日", "Applied"),
    "col_cancelled": ("廃止日", "Cancelled"),
    "col_charge_start": ("課金開始日", "Charge start"),
    "col_charge_end": ("課金終了日", "Charge end"),
    "col_status": ("ステータス", "Status"),
    "col_actions": ("操作", "Actions"),
    "support_desk": ("サポート窓口", "Support desk"),
    "order_id": ("ArcserveオーダーID", "Arcserve order ID"),
    "application_id": ("申込ID", "Application ID"),
    "pending": ("発行中", "being issued"),
    "more": ("さらに表示", "More"),
    "act_new": ("新規", "New"),
    "act_addition": ("追加", "Add"),
    "act_detail": ("詳細", "Details"),
    "act_cancellation": ("廃止", "Cancel"),
    "act_vm_count_increase": ("仮想サーバー数追加", "Add VMs"),
    "act_contact_change": ("連絡先変更", "Change contact"),
    "new_exists": ("この製品にはご利用中の契約があります", "You already hold a live contract for this product"),  # R2
    # detail
    "detail": ("契約の詳細", "Contract details"),
    "product": ("製品", "Product"),
    "version": ("バージョン", "Version"),
    "contact": ("連絡先", "Contact"),
    "licenses": ("ライセンスキー", "License keys"),
    "license_key": ("ライセンスキー", "License key"),
    "usage": ("利用用途", "Usage"),
    "license_type": ("ライセンスタイプ", "License type"),
    "vm_count": ("仮想サーバー数", "VM count"),
    "billable": ("課金", "Billable"),
    "yes": ("あり", "yes"),
    "no": ("なし", "no"),
    "copy": ("コピー", "Copy"),
    "copied": ("コピーしました", "Copied"),
    "history": ("申込履歴", "Application history"),
    "kind": ("申込種別", "Kind"),
    "submitted": ("受付日時", "Submitted"),
    "expected": ("完了予定", "Expected completion"),  # R12
    "completed": ("完了日時", "Ended"),
    "reason": ("理由", "Reason"),
    "history_more": ("最新{shown}件を表示しています(全{total}件)。", "Showing the newest {shown} of {total}."),
    "immediately": ("即時", "immediately"),
    "overdue": ("予定を過ぎています", "past the expected time"),
    # forms
    "form_new": ("新規申込", "New application"),
    "form_addition": ("追加申込", "Additional licenses"),
    "form_vm_count_increase": ("仮想サーバー数追加", "VM-count increase"),
    "form_contact_change": ("連絡先メールアドレス・会社名の変更", "Change contact e-mail and company name"),
    "form_cancellation": ("廃止申込", "Cancellation"),
    "no_dates": ("希望日は指定できません。お申し込みは受付後ただちに処理され、完了予定日時は申込履歴に表示されます。",
                 "There is no wished-for date: an application is processed as soon as it is received, and its "
                 "expected completion is shown in the history."),  # R4
    "cancel_now": ("廃止は受付と同時に反映されます。速やかにライセンスのご利用を停止してください。廃止希望日の指定はできません。",
                   "A cancellation takes effect as soon as it is received: stop using the keys at once. "
                   "There is no wished-for cancellation date."),  # R8, R4
    "email": ("連絡先メールアドレス", "Contact e-mail"),
    "company_name": ("連絡先会社名", "Company name"),
    "line": ("ライセンス {n}", "License line {n}"),
    "line_help": ("使わない行は数量を空欄のままにしてください。", "Leave the quantity empty on lines you do not use."),
    "quantity": ("数量", "Quantity"),
    "vm_count_help": ("専用ハイパーバイザーライセンスのみ", "dedicated hypervisor licenses only"),
    "license": ("対象ライセンス", "License"),
    "additional_vms": ("追加する仮想サーバー数", "VMs to add"),
    "scope": ("廃止の範囲", "What to cancel"),
    "scope_all": ("すべてのライセンスキー(全廃止: ArcserveオーダーIDも廃止されます)",
                  "Every key (full cancellation: the Arcserve order ID is cancelled too)"),  # R9
    "scope_some": ("選択したライセンスキー", "The keys chosen below"),
    "hypervisor_together": ("ハイパーバイザー基盤のキーはすべて一緒にのみ廃止できます。",
                            "Hypervisor-platform keys can only be cancelled all together."),  # R8
    "all_hypervisor": ("ハイパーバイザー基盤のキーすべて", "All hypervisor-platform keys"),
    "submit": ("申し込む", "Apply"),
    "form_errors": ("入力内容を確認してください。", "Please check the fields below."),
    "no_vm_license": ("仮想サーバー数を追加できるライセンス(提供中の専用ハイパーバイザーライセンス)がありません。",
                      "No key can take more VMs (an active dedicated hypervisor license)."),  # R7
    "no_active_keys": ("廃止できる提供中のキーがありません。", "No active key is left to cancel."),  # R8
    # application progress
    "application": ("申込", "Application"),
    "received": ("お申し込みを受け付けました。", "Your application has been received."),
    "live": ("この画面は自動で更新されます。", "This page updates by itself."),
    "to_contract": ("契約の詳細へ", "To the contract"),
}

# Why the rules refuse, by reason code (docs/architecture.md, "Rules").
_REASONS: dict[str, tuple[str, str]] = {
    "contract_exists": ("この製品にはご利用中の契約があります。", "A live contract for this product exists."),  # R2
    "contract_preparing": ("新規準備中のため、発行が完了するまでこの操作はできません。",
                           "The contract is being prepared (新規準備中); wait until it is active."),  # R3
    "change_in_progress": ("追加または仮想サーバー数追加の処理中は廃止できません。",
                           "An addition or VM-count increase is still processing; cancel after it completes."),  # R6
    "not_dedicated_hypervisor": ("提供中の専用ハイパーバイザーライセンスのみ仮想サーバー数を追加できます。",
                                 "Only an active dedicated hypervisor license takes more VMs."),  # R7
    "hypervisor_partial_cancellation": ("ハイパーバイザー基盤のキーはすべて一緒にのみ廃止できます。",
                                        "Hypervisor-platform keys can only be cancelled all together."),  # R8
    "license_not_active": ("提供中でないキーは廃止できません。", "Only active keys can be cancelled."),  # R8
    "contract_cancelled": ("廃止済の契約には申し込めません。新規申込から始めてください。",
                           "The contract is cancelled; start again with a new application."),  # R10
    "not_found": ("契約またはライセンスが見つかりません。", "The contract or license was not found."),
    "too_many_licenses": ("1契約あたりのキーの上限を超えます。", "That passes the limit of keys per contract."),
    "invalid_application": ("申込内容に誤りがあります。", "The application is not valid."),
    # Arcserve's own words follow, as the provider's operator typed them (fulfilment).
    "vendor_refused": ("Arcserveが申込を受け付けませんでした: {message}", "Arcserve refused the application: {message}"),
}

_LABELS = {
    "contract_status": labels.CONTRACT_STATUS,
    "application_status": labels.APPLICATION_STATUS,
    "order_id_status": labels.ORDER_ID_STATUS,
    "usage": {k.value: v for k, v in labels.USAGE.items()},
    "license_type": {k.value: v for k, v in labels.LICENSE_TYPE.items()},
    "kind": {k.value: v for k, v in labels.KIND.items()},
}


class Words:
    """The words of one language, for the templates."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else "ja"
        self._en = self.lang == "en"

    def __call__(self, key: str, **values: object) -> str:
        text = _TEXT[key][1 if self._en else 0]
        return text.format(**values) if values else text

    def reason(self, reason: dict[str, str] | None) -> str:
        """A refusal in this language; the API's own message where the code is not known here."""
        if not reason:
            return ""
        known = _REASONS.get(reason.get("code", ""))
        message = reason.get("message", "")
        return known[1 if self._en else 0].replace("{message}", message) if known else message

    def label(self, vocabulary: str, value: str | None) -> str:
        """An API value in this language: its Japanese label, or the English value itself."""
        if value is None:
            return ""
        return value.replace("_", " ") if self._en else _LABELS[vocabulary].get(value, value)

    def beside(self, vocabulary: str, value: str | None) -> str:
        """The same value in the other language, shown beside it (DESIGN §2: Japanese status
        labels beside the English ones)."""
        if value is None:
            return ""
        return _LABELS[vocabulary].get(value, value) if self._en else value.replace("_", " ")
