"""A station's resources (staff, beds, equipment, medicine stock) and their monthly
snapshots. Pure: every draw comes from the station's ``random.Random``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from schemas import codes


@dataclass(slots=True)
class Resources:
    """What a station has; staff counts drift a little from month to month."""

    staff: dict[str, int]
    beds: int
    equipment: dict[str, int]
    stock: dict[str, int]

    @classmethod
    def draw(cls, rng: random.Random) -> Resources:
        """A plausible commune station's resources."""
        staff = {
            "doctor": 0 if rng.random() < 0.2 else rng.randint(1, 2),
            "assistant_doctor": rng.randint(1, 3),
            "ob_paediatric_assistant_doctor": int(rng.random() < 0.4),
            "nurse": rng.randint(1, 3),
            "midwife": int(rng.random() < 0.85) * rng.randint(1, 2),
            "pharmacist": int(rng.random() < 0.6),
            "village_health_worker": rng.randint(4, 20),
        }
        beds = rng.randint(3, 10)
        equipment = {
            item: rng.randint(0, 2) if item in ("ECG", "ULTRASOUND", "MICROSCOPE") else 1
            for item in codes.EQUIPMENT
        }
        stock = {m: rng.randint(50, 3000) for m in codes.ESSENTIAL_MEDICINES}
        return cls(staff, beds, equipment, stock)

    def snapshots(
        self, station: str, day: date, rng: random.Random
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(record type, record id, data) of the four snapshots of ``day``'s month."""
        period = day.isoformat()[:7]
        base = {"period": period, "as_of": day.isoformat()}
        if rng.random() < 0.1:
            cadre = rng.choice(("nurse", "assistant_doctor", "village_health_worker"))
            self.staff[cadre] = max(0, self.staff[cadre] + rng.choice((-1, 1)))
        staff = {**base, "counts": dict(self.staff)}
        occupied = rng.randint(0, self.beds)
        beds = {**base, "beds_total": self.beds, "beds_occupied": occupied}
        items = []
        for item, qty in self.equipment.items():
            working = qty - int(qty > 0 and rng.random() < 0.07)
            items.append({"item": item, "quantity": qty, "working": working})
        stock_items = []
        for med, on_hand in self.stock.items():
            out_ = rng.random() < 0.04
            level = 0 if out_ else max(0, int(on_hand * rng.uniform(0.5, 1.3)))
            stock_items.append({"medicine": med, "on_hand": level, "stock_out": out_})
        return [
            (rt, f"{station}:{resource}:{period}", data)
            for rt, resource, data in (
                ("staff_snapshot", "staff", staff),
                ("bed_snapshot", "beds", beds),
                ("equipment_snapshot", "equipment", {**base, "items": items}),
                ("stock_snapshot", "stock", {**base, "items": stock_items}),
            )
        ]
