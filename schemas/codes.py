"""Code lists of the contract (public classifications, kept small and explicit).

Membership is checked at the edge; the JSON Schema files carry only the *format* of a code
(plus ``x-code-list``) so a code list can grow without a new schema major.

Sources: ICD-10 (WHO 2019, the classification Vietnam's Ministry of Health uses, subset for
commune-level care, notifiable diseases and causes of death); the Expanded Programme on
Immunization (Tiêm chủng mở rộng) schedule; the notifiable infectious diseases of Law
03/2007/QH12 and Circular 54/2015/TT-BYT; GSO ethnic-group codes (Decision 121-TCTK/PPCĐ,
01-54); GSO province codes (pre-July-2025, 63 units) used as CCCD place-of-registration codes.
"""

from __future__ import annotations

import re
from typing import Final

# --- ICD-10 subset --------------------------------------------------------------------------
# A code is accepted when it is well-formed and either listed or a sub-category of a listed
# three-character category (A09 listed ⇒ A09.0 accepted).
ICD10_PATTERN: Final = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$"
ICD10_RE: Final = re.compile(ICD10_PATTERN)

ICD10_SUBSET: Final[dict[str, str]] = {
    "A00": "Cholera",
    "A01": "Typhoid and paratyphoid fevers",
    "A03": "Shigellosis",
    "A06": "Amoebiasis",
    "A09": "Infectious gastroenteritis and colitis, unspecified",
    "A15": "Respiratory tuberculosis",
    "A20": "Plague",
    "A22": "Anthrax",
    "A33": "Tetanus neonatorum",
    "A35": "Other tetanus",
    "A36": "Diphtheria",
    "A37": "Whooping cough",
    "A39": "Meningococcal infection",
    "A41": "Other sepsis",
    "A80": "Acute poliomyelitis",
    "A82": "Rabies",
    "A83": "Mosquito-borne viral encephalitis",
    "A90": "Dengue fever",
    "A91": "Dengue haemorrhagic fever",
    "A97": "Dengue",
    "B01": "Varicella",
    "B05": "Measles",
    "B06": "Rubella",
    "B08.4": "Enteroviral vesicular stomatitis with exanthem (hand, foot and mouth disease)",
    "B15": "Acute hepatitis A",
    "B16": "Acute hepatitis B",
    "B18": "Chronic viral hepatitis",
    "B20": "HIV disease",
    "B26": "Mumps",
    "B50": "Plasmodium falciparum malaria",
    "B54": "Unspecified malaria",
    "B86": "Scabies",
    "D50": "Iron deficiency anaemia",
    "E03": "Other hypothyroidism",
    "E10": "Type 1 diabetes mellitus",
    "E11": "Type 2 diabetes mellitus",
    "E14": "Unspecified diabetes mellitus",
    "E44": "Protein-energy malnutrition of moderate and mild degree",
    "E46": "Unspecified protein-energy malnutrition",
    "E78": "Disorders of lipoprotein metabolism",
    "F20": "Schizophrenia",
    "F32": "Depressive episode",
    "G40": "Epilepsy",
    "H10": "Conjunctivitis",
    "H66": "Suppurative and unspecified otitis media",
    "I10": "Essential (primary) hypertension",
    "I11": "Hypertensive heart disease",
    "I20": "Angina pectoris",
    "I21": "Acute myocardial infarction",
    "I50": "Heart failure",
    "I63": "Cerebral infarction",
    "I64": "Stroke, not specified as haemorrhage or infarction",
    "J00": "Acute nasopharyngitis (common cold)",
    "J02": "Acute pharyngitis",
    "J03": "Acute tonsillitis",
    "J06": "Acute upper respiratory infections of multiple and unspecified sites",
    "J09": "Influenza due to identified zoonotic or pandemic influenza virus (e.g. A(H5N1))",
    "J11": "Influenza, virus not identified",
    "J18": "Pneumonia, organism unspecified",
    "J20": "Acute bronchitis",
    "J44": "Other chronic obstructive pulmonary disease",
    "J45": "Asthma",
    "K29": "Gastritis and duodenitis",
    "K35": "Acute appendicitis",
    "K59": "Other functional intestinal disorders",
    "L02": "Cutaneous abscess, furuncle and carbuncle",
    "L30": "Other dermatitis",
    "M54": "Dorsalgia",
    "M79": "Other soft tissue disorders",
    "N39": "Other disorders of urinary system",
    "O14": "Pre-eclampsia",
    "O72": "Postpartum haemorrhage",
    "O80": "Single spontaneous delivery",
    "P07": "Disorders related to short gestation and low birth weight",
    "P21": "Birth asphyxia",
    "P36": "Bacterial sepsis of newborn",
    "R05": "Cough",
    "R50": "Fever of other and unknown origin",
    "R51": "Headache",
    "R99": "Other ill-defined and unspecified causes of mortality",
    "S06": "Intracranial injury",
    "T14": "Injury of unspecified body region",
    "T63": "Toxic effect of contact with venomous animals",
    "U07.1": "COVID-19, virus identified",
    "U07.2": "COVID-19, virus not identified",
    "V89": "Motor- or nonmotor-vehicle accident, type of vehicle unspecified",
    "W74": "Unspecified drowning and submersion",
    "X59": "Exposure to unspecified factor",
    "Z00": "General examination without complaint",
    "Z23": "Need for immunization against single bacterial diseases",
    "Z34": "Supervision of normal pregnancy",
}


def icd10_known(code: str) -> bool:
    """True when ``code`` is well-formed and in the shipped subset (or under a listed category)."""
    if not ICD10_RE.fullmatch(code):
        return False
    return code in ICD10_SUBSET or code[:3] in ICD10_SUBSET


# --- Expanded Programme on Immunization ------------------------------------------------------
# code -> (description, highest dose number in the programme)
VACCINES: Final[dict[str, tuple[str, int]]] = {
    "BCG": ("BCG (tuberculosis), at birth", 1),
    "HEPB_BIRTH": ("Hepatitis B birth dose, within 24 h", 1),
    "DTP_HEPB_HIB": ("Pentavalent DTP-HepB-Hib, at 2, 3, 4 months", 3),
    "OPV": ("Oral polio vaccine (bOPV), at 2, 3, 4 months", 3),
    "IPV": ("Inactivated polio vaccine, at 5 and 9 months", 2),
    "MEASLES": ("Measles (MCV1), at 9 months", 1),
    "MR": ("Measles-rubella, at 18 months (MR1); catch-up MR2", 2),
    "DTP": ("DTP booster, at 18 months", 1),
    "JE": ("Japanese encephalitis, from 12 months (3 doses)", 3),
    "ROTA": ("Rotavirus (oral)", 3),
    "TD": ("Tetanus-diphtheria, pregnant women and school children", 5),
}
VACCINE_PATTERN: Final = r"^[A-Z][A-Z0-9_]{1,31}$"

# Doses counted for "fully immunised before 1 year" (BCG, HepB birth dose, pentavalent 3,
# OPV 3, IPV 1, measles 1): vaccine code -> dose number that must have been given.
FULLY_IMMUNISED_UNDER_1: Final[dict[str, int]] = {
    "BCG": 1,
    "HEPB_BIRTH": 1,
    "DTP_HEPB_HIB": 3,
    "OPV": 3,
    "IPV": 1,
    "MEASLES": 1,
}

#: Measles-containing vaccines: the first dose of either is MCV1 (WHO) when given under 1.
MEASLES_CONTAINING: Final = ("MEASLES", "MR")

# --- indicator thresholds (docs/reports.md cites the source of each) -------------------------
#: WHO HEARTS: blood pressure controlled = systolic < 140 and diastolic < 90 mmHg.
BP_CONTROLLED_BELOW: Final = (140, 90)
#: WHO HEARTS-D: glucose controlled = fasting plasma glucose < 7.0 mmol/L, or HbA1c < 7 %.
FASTING_GLUCOSE_CONTROLLED_BELOW: Final = 7.0
HBA1C_CONTROLLED_BELOW: Final = 7.0
#: WHO: low birth weight = under 2,500 g at birth, whatever the gestational age.
LOW_BIRTH_WEIGHT_BELOW_G: Final = 2500
#: Skilled health personnel at birth (SDG 3.1.2): doctors, assistant doctors (y sĩ, incl.
#: OB/paediatric), nurses and midwives; village midwives (cô đỡ thôn bản), traditional birth
#: attendants, village health workers and family are not, even after a short training.
SKILLED_BIRTH_ATTENDANTS: Final = frozenset(
    {"doctor", "assistant_doctor", "ob_paediatric_assistant_doctor", "nurse", "midwife"}
)
#: Notifiable-disease incidence counts these case classifications (suspected cases are
#: notified for response, not counted as incident cases).
INCIDENT_CLASSIFICATIONS: Final = ("probable", "confirmed")

# --- notifiable infectious diseases ----------------------------------------------------------
# code -> (description, ICD-10 code)
NOTIFIABLE_DISEASES: Final[dict[str, tuple[str, str]]] = {
    "DENGUE": ("Dengue / dengue haemorrhagic fever", "A91"),
    "MEASLES": ("Measles", "B05"),
    "RUBELLA": ("Rubella", "B06"),
    "HFMD": ("Hand, foot and mouth disease", "B08.4"),
    "COVID19": ("COVID-19", "U07.1"),
    "INFLUENZA_A_H5N1": ("Influenza A(H5N1)", "J09"),
    "DIPHTHERIA": ("Diphtheria", "A36"),
    "PERTUSSIS": ("Pertussis (whooping cough)", "A37"),
    "NEONATAL_TETANUS": ("Neonatal tetanus", "A33"),
    "POLIO_AFP": ("Acute flaccid paralysis / poliomyelitis", "A80"),
    "CHOLERA": ("Cholera", "A00"),
    "TYPHOID": ("Typhoid fever", "A01"),
    "SHIGELLOSIS": ("Shigellosis", "A03"),
    "RABIES": ("Rabies", "A82"),
    "MALARIA": ("Malaria", "B54"),
    "MENINGOCOCCAL": ("Meningococcal infection", "A39"),
    "JAPANESE_ENCEPHALITIS": ("Japanese encephalitis", "A83"),
    "HEPATITIS_VIRAL": ("Acute viral hepatitis", "B15"),
    "MUMPS": ("Mumps", "B26"),
    "VARICELLA": ("Chickenpox", "B01"),
    "ANTHRAX": ("Anthrax", "A22"),
    "PLAGUE": ("Plague", "A20"),
}
DISEASE_PATTERN: Final = r"^[A-Z][A-Z0-9_]{1,31}$"

# --- health-worker cadres --------------------------------------------------------------------
CADRES: Final[dict[str, str]] = {
    "doctor": "Bác sĩ (medical doctor)",
    "assistant_doctor": "Y sĩ (assistant doctor)",
    "ob_paediatric_assistant_doctor": "Y sĩ sản nhi (OB/paediatric assistant doctor)",
    "nurse": "Điều dưỡng (nurse)",
    "midwife": "Hộ sinh (midwife)",
    "pharmacist": "Dược sĩ (pharmacist)",
    "village_health_worker": "Nhân viên y tế thôn bản (village health worker)",
}

# --- essential medicines (station tracer list) ------------------------------------------------
ESSENTIAL_MEDICINES: Final[dict[str, str]] = {
    "AMOXICILLIN_500_CAP": "Amoxicillin 500 mg capsule",
    "AMOXICILLIN_250_DT": "Amoxicillin 250 mg dispersible tablet (children)",
    "COTRIMOXAZOLE_480_TAB": "Sulfamethoxazole/trimethoprim 400/80 mg tablet",
    "PARACETAMOL_500_TAB": "Paracetamol 500 mg tablet",
    "ORS_SACHET": "Oral rehydration salts, sachet",
    "ZINC_20_TAB": "Zinc sulfate 20 mg dispersible tablet",
    "AMLODIPINE_5_TAB": "Amlodipine 5 mg tablet",
    "ENALAPRIL_5_TAB": "Enalapril 5 mg tablet",
    "METFORMIN_500_TAB": "Metformin 500 mg tablet",
    "GLICLAZIDE_80_TAB": "Gliclazide 80 mg tablet",
    "OXYTOCIN_10IU_INJ": "Oxytocin 10 IU injection",
    "MAGNESIUM_SULFATE_INJ": "Magnesium sulfate 50% injection",
    "IRON_FOLIC_TAB": "Ferrous salt + folic acid tablet",
    "SALBUTAMOL_INH": "Salbutamol 100 mcg inhaler",
    "ADRENALINE_1MG_INJ": "Adrenaline 1 mg/ml injection",
    "VITAMIN_A_CAP": "Vitamin A 200,000 IU capsule",
}
MEDICINE_PATTERN: Final = r"^[A-Z][A-Z0-9_]{1,47}$"

# --- medicines dispensed (medicine_dispensed) ------------------------------------------------
# The national active-ingredient code of the Ministry's shared code set (Bộ mã danh mục dùng
# chung; Decision 130 table 2 ``MA_THUOC``: e.g. ``40.17`` oxygen; a compounded medicine joins
# its ingredients' codes with ``+``). The list has thousands of entries and changes often: only
# the format is checked.
NATIONAL_MEDICINE_PATTERN: Final = r"^[0-9A-Za-z][0-9A-Za-z.+_/-]{0,49}$"
# Route of administration code (table 2 ``DUONG_DUNG``, at most 4 characters there).
ROUTE_PATTERN: Final = r"^[0-9A-Za-z][0-9A-Za-z.]{0,7}$"

# --- station equipment ------------------------------------------------------------------------
EQUIPMENT: Final[dict[str, str]] = {
    "BP_MONITOR": "Blood pressure monitor",
    "STETHOSCOPE": "Stethoscope",
    "THERMOMETER": "Thermometer",
    "ADULT_SCALE": "Adult weighing scale",
    "INFANT_SCALE": "Infant weighing scale",
    "GLUCOMETER": "Blood glucose meter",
    "ECG": "Electrocardiograph",
    "ULTRASOUND": "Ultrasound scanner",
    "OXYGEN_CONCENTRATOR": "Oxygen concentrator",
    "AUTOCLAVE": "Autoclave / steriliser",
    "DELIVERY_BED": "Delivery bed",
    "NEWBORN_RESUSCITATOR": "Newborn bag-valve-mask resuscitator",
    "VACCINE_REFRIGERATOR": "Vaccine refrigerator (cold chain)",
    "NEBULISER": "Nebuliser",
    "MICROSCOPE": "Microscope",
}
EQUIPMENT_PATTERN: Final = r"^[A-Z][A-Z0-9_]{1,47}$"

# --- GSO ethnic groups (01-54) ----------------------------------------------------------------
ETHNIC_GROUPS: Final[dict[str, str]] = {
    f"{i:02d}": name
    for i, name in enumerate(
        (
            "Kinh",
            "Tày",
            "Thái",
            "Hoa",
            "Khơ-me",
            "Mường",
            "Nùng",
            "HMông",
            "Dao",
            "Gia-rai",
            "Ngái",
            "Ê-đê",
            "Ba-na",
            "Xơ-Đăng",
            "Sán Chay",
            "Cơ-ho",
            "Chăm",
            "Sán Dìu",
            "Hrê",
            "Mnông",
            "Ra-glai",
            "Xtiêng",
            "Bru-Vân Kiều",
            "Thổ",
            "Giáy",
            "Cơ-tu",
            "Gié-Triêng",
            "Mạ",
            "Khơ-mú",
            "Co",
            "Tà-ôi",
            "Chơ-ro",
            "Kháng",
            "Xinh-mun",
            "Hà Nhì",
            "Chu-ru",
            "Lào",
            "La Chí",
            "La Ha",
            "Phù Lá",
            "La Hủ",
            "Lự",
            "Lô Lô",
            "Chứt",
            "Mảng",
            "Pà Thẻn",
            "Cơ Lao",
            "Cống",
            "Bố Y",
            "Si La",
            "Pu Péo",
            "Brâu",
            "Ơ Đu",
            "Rơ-măm",
        ),
        start=1,
    )
}

# --- GSO province codes (pre-July-2025), as used in the CCCD's first three digits -------------
PROVINCE_CODES: Final[frozenset[str]] = frozenset(
    f"{c:02d}"
    for c in (1, 2, 4, 6, 8, 10, 11, 12, 14, 15, 17, 19, 20, 22, 24, 25, 26, 27, 30, 31, 33, 34,
              35, 36, 37, 38, 40, 42, 44, 45, 46, 48, 49, 51, 52, 54, 56, 58, 60, 62, 64, 66, 67,
              68, 70, 72, 74, 75, 77, 79, 80, 82, 83, 84, 86, 87, 89, 91, 92, 93, 94, 95, 96)
)  # fmt: skip
