"""The console's words, in Japanese (the default) and English: the provider's operators read
them. Times are shown in Japan time, as the source process reckons them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

LANGUAGES = ("ja", "en")
LANG_COOKIE = "arcserve_backoffice_lang"
JST = timezone(timedelta(hours=9), "JST")

_TEXT: dict[str, tuple[str, str]] = {
    "title": ("Arcserve フルフィルメント 管理コンソール", "Arcserve fulfilment console"),
    "switch_language": ("English", "日本語"),
    "sign_in": ("サインイン", "Sign in"),
    "sign_out": ("サインアウト", "Sign out"),
    "operator_key": ("オペレーターキー", "Operator key"),
    "sign_in_hint": ("プロバイダーのオペレーター専用です。テナントのAPIキーは使えません。",
                     "For the provider's operators only; no tenant's API key works here."),
    "wrong_key": ("オペレーターキーが正しくないか、失効しています。", "That operator key is wrong or revoked."),
    "too_many": ("誤ったキーが多すぎます。しばらくしてからやり直してください。",
                 "Too many wrong keys; try again later."),
    "unavailable": ("一時的に利用できません。しばらくしてからやり直してください。",
                    "Not available for the moment; try again later."),
    "no_such_operator": ("認証プロキシが示す利用者はこのコンソールのオペレーターではありません。",
                         "The authenticating proxy names no operator of this console."),
    "signed_out": ("サインアウトされました(キーが失効したか期限切れです)。",
                   "You were signed out (the key was revoked or the sign-in expired)."),
    "expired_form": ("フォームの有効期限が切れました。もう一度送信してください。",
                     "The form expired; send it again."),
    "tasks": ("フルフィルメント依頼", "Fulfilment tasks"),
    "signed_in_as": ("{name}({role})としてサインイン中", "Signed in as {name} ({role})"),
    "state": ("状態", "State"),
    "tenant": ("テナント", "Tenant"),
    "kind": ("種別", "Kind"),
    "overdue_only": ("期限超過のみ", "Overdue only"),
    "filter": ("絞り込む", "Filter"),
    "all": ("すべて", "all"),
    "due": ("期限", "Due"),
    "submitted": ("申込日時", "Submitted"),
    "application": ("申込ID", "Application"),
    "contract": ("契約ID", "Contract"),
    "needs": ("必要なもの", "Needs"),
    "needs_order_id": ("オーダーID", "order ID"),
    "keys_count": ("キー {n} 件", "{n} keys"),
    "overdue": ("期限超過", "overdue"),
    "none": ("該当する依頼はありません。", "No task matches."),
    "more": ("次のページ", "Next page"),
    "back": ("一覧へ戻る", "Back to the list"),
    "order_id": ("Arcserve オーダーID", "Arcserve order ID"),
    "license": ("ライセンス", "License"),
    "license_key": ("ライセンスキー", "License key"),
    "key_hint": ("Arcserveから届いたとおりに入力してください(例: 7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA)。",
                 "Type them as Arcserve delivered them (e.g. 7K2QD-M9XHT-0WB4R-PZ6NC-E3VJA)."),
    "fulfil": ("発行を登録する", "Fulfil"),
    "reject": ("お断りとして登録する", "Reject"),
    "reason": ("理由(テナントに表示されます)", "Reason (the tenant reads it)"),
    "reject_title": ("Arcserveが受け付けなかった場合", "If Arcserve refused it"),
    "closed": ("{state}({at}、{by})", "{state} ({at}, by {by})"),
    "done_fulfil": ("発行を登録しました。テナントの契約は間もなく提供中になります。",
                    "Fulfilled: the tenant's application completes in a moment."),
    "done_reject": ("お断りとして登録しました。テナントには理由が表示されます。",
                    "Rejected: the tenant reads the reason."),
    "forbidden": ("閲覧者は発行もお断りもできません。", "A viewer can neither fulfil nor reject."),
    "not_open": ("この依頼はすでに処理済みです。", "This task is closed already."),
    "viewer_note": ("閲覧者として表示しています。", "You are viewing as a viewer."),
    "missing": ("その依頼は見つかりません。", "No such task."),
    "open": ("未処理", "open"),
    "fulfilled": ("発行済", "fulfilled"),
    "rejected": ("お断り", "rejected"),
    "new": ("新規", "new"),
    "addition": ("追加", "addition"),
    "vm_count_increase": ("仮想サーバー数追加", "VM-count increase"),
    "revocations": ("Arcserve での失効", "Revocations at Arcserve"),
    "revocations_hint": ("解約されたライセンスのキーを Arcserve で失効させ、契約がすべて解約されたときはオーダーIDも取り消してから、確認済みにしてください。テナントには解約済みと表示されています。",
                         "Revoke the cancelled licenses' keys at Arcserve, and cancel the order ID when the whole "
                         "contract ends, then confirm here. The tenant sees them cancelled already."),
    "requested": ("依頼日時", "Requested"),
    "keys_to_revoke": ("失効させるキー", "Keys to revoke"),
    "key_ends_with": ("末尾 {end}", "ending {end}"),
    "order_id_to_cancel": ("取り消すオーダーID", "Order ID to cancel"),
    "announced": ("通知回数", "Announced"),
    "confirm": ("失効を確認済みにする", "Confirm revoked"),
    "confirmed": ("確認済", "confirmed"),
    "confirmed_by": ("{at}、{by}", "{at}, by {by}"),
    "done_confirm": ("確認済みにしました。", "Confirmed."),
    "no_revocations": ("該当する失効依頼はありません。", "No revocation matches."),
    "revocation_forbidden": ("閲覧者は確認済みにできません。", "A viewer cannot confirm."),
    "revocation_not_open": ("この失効依頼はすでに確認済みです。", "This revocation is confirmed already."),
    "fulfiller": ("発行担当", "fulfiller"),
    "viewer": ("閲覧者", "viewer"),
}


class Words:
    """The words of one language, for the templates."""

    def __init__(self, lang: str):
        self.lang = lang if lang in LANGUAGES else "ja"

    def __call__(self, key: str, **values: object) -> str:
        text = _TEXT[key][1 if self.lang == "en" else 0] if key in _TEXT else key
        return text.format(**values) if values else text


def jst(value: datetime | None) -> str:
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M JST") if value else ""
