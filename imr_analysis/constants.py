"""The codebook: IMR modules, IMRS items, services, districts, diagnoses, medications,
the raw exports' column names and codings, and the columns of the cleaned cohort.

It holds no data about any patient and knows nothing of the paper's published figures.
"""

from __future__ import annotations

# IMR modules (Gingerich & Mueser 2011 revised edition; titles as printed in the paper)
MODULES: dict[int, str] = {
    1: "Recovery Strategies",
    2: "Basic Facts About Mental Illness",
    3: "The Stress-Vulnerability Model",
    4: "Building Social Support",
    5: "Using Medication Effectively",
    6: "Drug and Alcohol Use",
    7: "Reducing Relapse",
    8: "Coping with Stress",
    9: "Coping with Persistent Symptoms",
    10: "Getting Your Needs Met in the Behavioral Health System",
    11: "Healthy Lifestyles",
}
N_MODULES = len(MODULES)

#: The label a module has in the Google Form checkbox question ("M1. Recovery Strategies").
MODULE_FORM_LABELS: dict[int, str] = {k: f"M{k}. {v}" for k, v in MODULES.items()}

#: Wording of the Italian edition of the manual (Boggian et al. 2016) accepted as aliases.
MODULE_ITALIAN_TITLES: dict[int, str] = {
    1: "Strategie di recovery",
    2: "Informazioni pratiche sulla malattia mentale",
    3: "Il modello stress-vulnerabilità",
    4: "Costruire il supporto sociale",
    5: "Usare i farmaci in modo efficace",
    6: "Uso di alcol e droghe",
    7: "Ridurre le ricadute",
    8: "Affrontare lo stress",
    9: "Affrontare i problemi e i sintomi persistenti",
    10: "Soddisfare i propri bisogni nel sistema dei servizi di salute mentale",
    11: "Stili di vita sani",
}

MODULE_COLUMNS = [f"module_{k:02d}" for k in MODULES]

# IMR Scale (Salyers et al. 2007): 15 items scored 1-5, higher = better
IMRS_ITEMS: dict[int, str] = {
    1: "Progress towards personal goals",
    2: "Knowledge",
    3: "Involvement of family and friends",
    4: "Contact with people outside the family",
    5: "Time in structured roles",
    6: "Symptom distress",
    7: "Impairment of functioning",
    8: "Relapse prevention planning",
    9: "Relapse of symptoms",
    10: "Psychiatric hospitalisations",
    11: "Coping",
    12: "Involvement with self-help activities",
    13: "Using medication effectively",
    14: "Functioning affected by alcohol use",
    15: "Functioning affected by drug use",
}
N_IMRS_ITEMS = len(IMRS_ITEMS)
IMRS_MIN, IMRS_MAX = 1, 5
IMRS_USER_COLUMNS = [f"imrs_user_{k:02d}" for k in IMRS_ITEMS]
IMRS_PROVIDER_COLUMNS = [f"imrs_provider_{k:02d}" for k in IMRS_ITEMS]

# Services
SERVICE_TYPES = ("CMHC", "SerD", "EDP")
SERVICE_TYPE_LABELS = {
    "CMHC": "Community Mental Health Centres",
    "SerD": "Services for Addictions and Dependence",
    "EDP": "Eating Disorders Programme",
}

#: The ten units that delivered IMR, as the form lists them, with their service type
#: and the EHR that holds their patients.
SERVICE_UNITS: dict[str, dict[str, str]] = {
    "CMHC Cento": {"service_type": "CMHC", "ehr": "EFESO"},
    "CMHC Codigoro": {"service_type": "CMHC", "ehr": "EFESO"},
    "CMHC Copparo": {"service_type": "CMHC", "ehr": "EFESO"},
    "CMHC Ferrara": {"service_type": "CMHC", "ehr": "EFESO"},
    "CMHC Portomaggiore": {"service_type": "CMHC", "ehr": "EFESO"},
    "SerD Cento": {"service_type": "SerD", "ehr": "Sister"},
    "SerD Codigoro": {"service_type": "SerD", "ehr": "Sister"},
    "SerD Ferrara": {"service_type": "SerD", "ehr": "Sister"},
    "SerD Portomaggiore": {"service_type": "SerD", "ehr": "Sister"},
    "EDP Ferrara": {"service_type": "EDP", "ehr": "EFESO"},
}
#: Other names of the three kinds of service, Italian and English, accepted before the town.
SERVICE_TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "CMHC": ("CMHC", "CSM", "Centro di Salute Mentale", "Centro Salute Mentale", "Community Mental Health Centre",
             "Community Mental Health Center"),
    "SerD": ("SerD", "SerDP", "SerT", "Servizio Dipendenze", "Servizio Dipendenze Patologiche",
             "Servizio per le Dipendenze"),
    "EDP": ("EDP", "DCA", "Programma DCA", "Programma Disturbi del Comportamento Alimentare",
            "Eating Disorders Programme", "Eating Disorders Program"),
}

# Residence: municipalities of the province of Ferrara and their health district
DISTRICTS = ("Centro-Nord", "Ovest", "Sud-Est", "outside")
MUNICIPALITY_DISTRICT: dict[str, str] = {
    **dict.fromkeys(("Ferrara", "Copparo", "Jolanda di Savoia", "Masi Torello", "Riva del Po", "Tresignana",
                     "Voghiera"), "Centro-Nord"),
    **dict.fromkeys(("Cento", "Bondeno", "Poggio Renatico", "Terre del Reno", "Vigarano Mainarda"), "Ovest"),
    **dict.fromkeys(("Argenta", "Codigoro", "Comacchio", "Fiscaglia", "Goro", "Lagosanto", "Mesola", "Ostellato",
                     "Portomaggiore"), "Sud-Est"),
}

# Diagnoses (ICD-10 chapter V) and medications (WHO ATC)
DIAGNOSIS_GROUPS = ("schizophrenia_spectrum", "bipolar", "depressive", "substance_use", "eating", "other")
DIAGNOSIS_GROUP_LABELS = {
    "schizophrenia_spectrum": "Schizophrenia spectrum and delusional disorders (F20-F29)",
    "bipolar": "Bipolar and manic disorders (F30-F31)",
    "depressive": "Depressive disorders (F32-F34)",
    "substance_use": "Substance use disorders (F10-F19)",
    "eating": "Eating disorders (F50)",
    "other": "Other mental disorders",
}
#: ICD-10 F codes (two digits) of each diagnosis group; any other code is "other".
DIAGNOSIS_GROUP_CODES = {"schizophrenia_spectrum": range(20, 30), "bipolar": range(30, 32), "depressive": range(32, 35),
                         "substance_use": range(10, 20), "eating": range(50, 51)}

MEDICATION_CLASSES = ("antipsychotic", "antidepressant", "mood_stabilizer", "anxiolytic_sedative", "addiction")
MEDICATION_CLASS_LABELS = {
    "antipsychotic": "Antipsychotics (N05A, lithium excluded)",
    "antidepressant": "Antidepressants (N06A)",
    "mood_stabilizer": "Mood stabilisers (lithium N05AN, antiepileptics N03A)",
    "anxiolytic_sedative": "Anxiolytics, hypnotics and sedatives (N05B, N05C)",
    "addiction": "Drugs used in addictive disorders (N07B)",
    "none": "No psychotropic drug",
}
MEDICATION_COLUMNS = [f"med_{c}" for c in MEDICATION_CLASSES] + ["med_none"]
#: ATC prefix -> medication class; the first matching prefix wins (lithium, N05AN, before N05A).
ATC_CLASS_PREFIXES = (("N05AN", "mood_stabilizer"), ("N05A", "antipsychotic"), ("N06A", "antidepressant"),
                      ("N03A", "mood_stabilizer"), ("N05B", "anxiolytic_sedative"), ("N05C", "anxiolytic_sedative"),
                      ("N07B", "addiction"))

# Social variables recorded at first access: canonical categories
MARITAL_STATUS = ("never_married", "married_cohabiting", "separated_divorced", "widowed")
LIVING_CONDITION = ("alone", "family_of_origin", "partner_children", "supported_housing", "other")
EMPLOYMENT_STATUS = ("employed", "unemployed", "student", "pensioner", "other")
IMR_FORMATS = ("group", "individual")
SEXES = ("M", "F")

# Raw exports: file names, column names and source-specific codings
RAW_FILES = {
    "EFESO": "efeso_extract.csv",
    "Sister": "sister_extract.csv",
    "form": "imr_summary_form.csv",
}

#: First line of every synthetic raw export. Real exports never carry it.
SYNTHETIC_MARKER = "# SYNTHETIC DATA"

#: Canonical EHR field -> column name in each EHR extract.
EHR_COLUMNS: dict[str, dict[str, str]] = {
    "EFESO": {
        "patient_code": "COD_PAZIENTE",
        "birth_year": "ANNO_NASCITA",
        "sex": "SESSO",
        "municipality": "COMUNE_RESIDENZA",
        "first_access_date": "DATA_PRIMO_ACCESSO",
        "diagnosis": "DIAGNOSI_ICD10",
        "medications": "FARMACI_ATC",
        "programme_start_date": "DATA_INIZIO_PROGRAMMA",
        "education_years": "ANNI_SCOLARITA",
        "marital_status": "STATO_CIVILE",
        "living_condition": "CONDIZIONE_ABITATIVA",
        "employment_status": "CONDIZIONE_LAVORATIVA",
    },
    "Sister": {
        "patient_code": "id_paziente",
        "birth_year": "anno_nascita",
        "sex": "sesso",
        "municipality": "comune_residenza",
        "first_access_date": "data_primo_contatto",
        "diagnosis": "diagnosi_principale",
        "medications": "terapia_atc",
        "programme_start_date": "data_inizio_pt",
        "education_years": "scolarita_anni",
        "marital_status": "stato_civile",
        "living_condition": "condizione_abitativa",
        "employment_status": "condizione_lavorativa",
    },
}

#: How each EHR writes its fields (delimiter, date format, ICD-10 style, list separator).
EHR_FORMATS: dict[str, dict[str, str]] = {
    "EFESO": {"delimiter": ";", "date_format": "%d/%m/%Y", "icd_style": "dotted", "med_sep": ", "},
    "Sister": {"delimiter": ",", "date_format": "%Y-%m-%d", "icd_style": "undotted", "med_sep": "|"},
}

#: Source coding -> canonical category.
EHR_CODINGS: dict[str, dict[str, dict[str, str]]] = {
    "EFESO": {
        "sex": {"M": "M", "F": "F"},
        "marital_status": {
            "Celibe/Nubile": "never_married",
            "Coniugato/a": "married_cohabiting",
            "Convivente": "married_cohabiting",
            "Separato/a": "separated_divorced",
            "Divorziato/a": "separated_divorced",
            "Vedovo/a": "widowed",
        },
        "living_condition": {
            "Solo/a": "alone",
            "Con famiglia di origine": "family_of_origin",
            "Con partner e/o figli": "partner_children",
            "Struttura residenziale/abitare supportato": "supported_housing",
            "Altro": "other",
        },
        "employment_status": {
            "Occupato/a": "employed",
            "Disoccupato/a": "unemployed",
            "Studente/ssa": "student",
            "Pensionato/a": "pensioner",
            "Altro": "other",
        },
    },
    "Sister": {
        "sex": {"1": "M", "2": "F"},
        "marital_status": {
            "1": "never_married",
            "2": "married_cohabiting",
            "3": "separated_divorced",
            "4": "separated_divorced",
            "5": "widowed",
        },
        "living_condition": {
            "SOLO": "alone",
            "FAMIGLIA DI ORIGINE": "family_of_origin",
            "PARTNER/FIGLI": "partner_children",
            "STRUTTURA": "supported_housing",
            "ALTRO": "other",
        },
        "employment_status": {
            "OCCUPATO": "employed",
            "DISOCCUPATO": "unemployed",
            "STUDENTE": "student",
            "PENSIONATO": "pensioner",
            "ALTRO": "other",
        },
    },
}

#: Google Form question titles (the CSV header) for the canonical form fields.
FORM_COLUMNS: dict[str, str] = {
    "timestamp": "Timestamp",
    "patient_code": "Patient code",
    "service_unit": "Service unit",
    "start_date": "IMR start date",
    "stop_date": "IMR stop date",
    "format": "IMR format",
    "manual_version": "Manual version",
    "n_sessions": "Number of sessions",
    "modules": "Modules administered",
}
FORM_IMRS_USER = {k: f"User IMRS [{k}. {v}]" for k, v in IMRS_ITEMS.items()}
FORM_IMRS_PROVIDER = {k: f"Provider IMRS [{k}. {v}]" for k, v in IMRS_ITEMS.items()}
FORM_DATE_FORMAT = "%d/%m/%Y"
FORM_TIMESTAMP_FORMAT = "%d/%m/%Y %H:%M:%S"
FORM_FORMATS = {"Group": "group", "Individual": "individual"}
#: Answers accepted for the IMR format question (the Google Form in English or Italian).
IMR_FORMAT_CODING = FORM_FORMATS | {"Gruppo": "group", "Di gruppo": "group", "Individuale": "individual"}
MANUAL_VERSIONS = (
    "Revised edition (Gingerich & Mueser 2011), Italian translation (Boggian et al. 2016)",
    "Original toolkit (SAMHSA 2009)",
)
#: Google Forms joins the boxes ticked in a checkbox question with ";".
FORM_CHECKBOX_SEP = ";"

# The cleaned cohort: one row per patient
COHORT_COLUMNS = (
    ["patient_id", "source_ehr", "service_type", "service_unit", "sex", "birth_year", "age_at_imr_start",
     "age_at_first_treatment", "residence_municipality", "residence_district", "education_years", "marital_status",
     "living_condition", "employment_status", "first_treatment_date", "programme_start_date", "diagnosis_icd10",
     "diagnosis_group", "atc_codes"]
    + MEDICATION_COLUMNS
    + ["imr_start", "imr_end", "imr_duration_months", "illness_duration_years", "imr_format", "manual_version",
       "n_sessions"]
    + MODULE_COLUMNS
    + ["n_modules"]
    + IMRS_USER_COLUMNS
    + IMRS_PROVIDER_COLUMNS
    + ["imrs_user_total", "imrs_provider_total", "imrs_user_mean", "imrs_provider_mean"]
)

#: The cohort's text columns held as ``category`` (categories: the values present, sorted);
#: ``patient_id`` (one value per row) is ``string``.
COHORT_CATEGORICAL_COLUMNS = (
    "source_ehr", "service_type", "service_unit", "sex", "residence_municipality", "residence_district",
    "marital_status", "living_condition", "employment_status", "diagnosis_icd10", "diagnosis_group", "atc_codes",
    "imr_format", "manual_version",
)

#: Days in an average Gregorian month, used for durations in months.
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25
