"""Notifiable infectious-disease cases (Law 03/2007/QH12, Circular 54/2015/TT-BYT)."""

from __future__ import annotations

from typing import Literal

from schemas.fields import DiseaseCode, HealthId, PastDate, Payload


class DiseaseCaseV1(Payload):
    """disease_case/v1."""

    health_id: HealthId
    disease: DiseaseCode
    onset_date: PastDate
    classification: Literal["suspected", "probable", "confirmed"] = "suspected"
    hospitalised: bool = False
    outcome: Literal["recovering", "recovered", "died", "unknown"] = "unknown"
