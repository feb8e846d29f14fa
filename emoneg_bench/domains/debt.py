"""CRAD — a creditor negotiates a repayment timeline (days) with an indebted business owner.

The creditor (focal) wants the debt repaid sooner: polarity ``lower``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from ..units import Unit
from .base import Column, ColumnKind, Domain, Polarity, Scenario, register, sample_anchors

FOCAL_RANGE, COUNTERPARTY_RANGE = (5, 20), (32, 179)


@dataclass(frozen=True, kw_only=True)
class DebtScenario(Scenario):
    creditor_name: str
    debtor_name: str
    credit_type: str
    original_amount_usd: float
    outstanding_balance_usd: float
    days_overdue: int
    purchase_purpose: str
    reason_for_overdue: str
    business_sector: str
    collateral: str
    recovery_stage: str
    cash_flow_situation: str
    proposed_solution: str
    recovery_probability_pct: float
    interest_accrued_usd: float
    last_payment_date: str = ""
    business_impact: str = ""

    context_template: ClassVar[str] = (
        "{debtor_name} ({business_sector}) owes {creditor_name} ${outstanding_balance_usd:,.0f} on its "
        "{credit_type_lower}, taken for {purchase_purpose_lower}; the account is {days_overdue} days overdue "
        "because of {reason_for_overdue_lower}. Cash flow: {cash_flow_situation_lower}. Collateral: "
        "{collateral_lower}. Recovery stage: {recovery_stage}. Suggested route: {proposed_solution_lower}."
    )

    def slots(self) -> dict[str, Any]:
        slots = super().slots()
        for key in ("credit_type", "purchase_purpose", "reason_for_overdue", "cash_flow_situation",
                    "collateral", "proposed_solution"):
            slots[f"{key}_lower"] = str(slots[key]).lower()
        return slots


_COMPANY_STEMS = ("Harbor", "Summit", "Maple", "Ironwood", "Bluefield", "Crescent", "Northgate", "Redstone",
                  "Silverline", "Oakridge", "Westbrook", "Pinecrest", "Lakeshore", "Granite", "Cedar", "Riverside")
_COMPANY_SUFFIXES = ("Supply", "Logistics", "Foods", "Fabrication", "Textiles", "Print Works", "Hardware",
                     "Bakery", "Auto Parts", "Furniture", "Electrics", "Studios")
_LENDERS = ("Union Commercial Bank", "Meridian Credit", "First Harbor Lending", "Keystone Finance",
            "Atlas Capital Partners", "Civic Trust Bank")
_CREDIT_TYPES = ("Working Capital Loan", "Equipment Financing", "Business Line of Credit", "Trade Credit",
                 "Commercial Mortgage", "Invoice Financing")
_PURPOSES = ("Inventory purchase", "Manufacturing equipment", "Tax payments", "Emergency expenses",
             "Store renovation", "Payroll bridge", "Fleet expansion")
_REASONS = ("Client bankruptcy affecting receivables", "Supply chain disruption", "Key customer default",
            "Seasonal sales downturn", "Unexpected equipment failure", "Loss of a major contract",
            "Rising input costs")
_SECTORS = ("retail", "manufacturing", "hospitality", "construction", "agriculture", "wholesale", "transport")
_COLLATERAL = ("Inventory", "Accounts Receivable", "Personal Guarantee", "Equipment", "Real Estate", "None")
_STAGES = ("Early Delinquency", "Pre-Collection", "Pre-Legal", "Collection")
_CASH_FLOW = ("Complete Breakdown", "Chronic Shortage", "Temporary Squeeze", "Irregular Inflows")
_SOLUTIONS = ("Debt restructuring with extended terms", "Collateral liquidation", "Equity conversion",
              "Third-party guarantee", "Partial settlement", "Installment plan")


def _sample_fields(rng: random.Random) -> dict[str, Any]:
    a, b = sample_anchors(rng, Polarity.LOWER, FOCAL_RANGE, COUNTERPARTY_RANGE, min_gap=12)
    original = round(rng.uniform(8_000, 60_000), 2)
    outstanding = round(original * rng.uniform(0.3, 0.9), 2)
    days_overdue = rng.randint(30, 360)
    return dict(
        focal_anchor=a,
        counterparty_anchor=b,
        creditor_name=rng.choice(_LENDERS),
        debtor_name=f"{rng.choice(_COMPANY_STEMS)} {rng.choice(_COMPANY_SUFFIXES)}",
        credit_type=rng.choice(_CREDIT_TYPES),
        original_amount_usd=original,
        outstanding_balance_usd=outstanding,
        days_overdue=days_overdue,
        purchase_purpose=rng.choice(_PURPOSES),
        reason_for_overdue=rng.choice(_REASONS),
        business_sector=rng.choice(_SECTORS),
        collateral=rng.choice(_COLLATERAL),
        recovery_stage=rng.choice(_STAGES),
        cash_flow_situation=rng.choice(_CASH_FLOW),
        proposed_solution=rng.choice(_SOLUTIONS),
        recovery_probability_pct=round(rng.uniform(5, 95), 1),
        interest_accrued_usd=round(outstanding * 0.12 * days_overdue / 365, 2),
    )


CSV_COLUMNS = (
    Column("Creditor Name", "creditor_name", ColumnKind.TEXT),
    Column("Debtor Name", "debtor_name", ColumnKind.TEXT),
    Column("Credit Type", "credit_type", ColumnKind.CATEGORY),
    Column("Original Amount (USD)", "original_amount_usd", ColumnKind.FLOAT),
    Column("Outstanding Balance (USD)", "outstanding_balance_usd", ColumnKind.FLOAT),
    Column("Creditor Target Days", "creditor_target_days", ColumnKind.INT),
    Column("Debtor Target Days", "debtor_target_days", ColumnKind.INT),
    Column("Days Overdue", "days_overdue", ColumnKind.INT),
    Column("Purchase Purpose", "purchase_purpose", ColumnKind.TEXT),
    Column("Reason for Overdue", "reason_for_overdue", ColumnKind.TEXT),
    Column("Business Sector", "business_sector", ColumnKind.TEXT),
    Column("Last Payment Date", "last_payment_date", ColumnKind.DATETIME),
    Column("Collateral", "collateral", ColumnKind.CATEGORY),
    Column("Recovery Stage", "recovery_stage", ColumnKind.CATEGORY),
    Column("Cash Flow Situation", "cash_flow_situation", ColumnKind.CATEGORY),
    Column("Business Impact Description", "business_impact", ColumnKind.TEXT),
    Column("Proposed Solution", "proposed_solution", ColumnKind.TEXT),
    Column("Recovery Probability (%)", "recovery_probability_pct", ColumnKind.FLOAT),
    Column("Interest Accrued (USD)", "interest_accrued_usd", ColumnKind.FLOAT),
)


def _anchors_from_csv(row: dict[str, Any]) -> tuple[int, int]:
    return row.pop("creditor_target_days"), row.pop("debtor_target_days")


DEBT = register(Domain(
    id="debt",
    paper_name="CRAD",
    issue="repayment timeline",
    unit=Unit.DAYS,
    polarity=Polarity.LOWER,
    tolerance=2,
    focal_role="creditor",
    counterparty_role="indebted business owner",
    focal_anchor_range=FOCAL_RANGE,
    counterparty_anchor_range=COUNTERPARTY_RANGE,
    offer_bounds=(0, 730),
    scenario_type=DebtScenario,
    sample_fields=_sample_fields,
    focal_prompt=(
        "You are a collections officer for {creditor_name}, negotiating when an overdue debt will be repaid. "
        "{context} You want full repayment as soon as possible: ideally within {focal_anchor_text}. Every "
        "message must state the repayment timeline you propose, in days."
    ),
    counterparty_prompt=(
        "You run {debtor_name} and are negotiating when you will repay an overdue debt. {context} You need "
        "as much time as possible: ideally {counterparty_anchor_text}. Every message must state the "
        "repayment timeline you propose, in days."
    ),
    csv_columns=CSV_COLUMNS,
    anchors_from_csv=_anchors_from_csv,
))
