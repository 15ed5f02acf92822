"""The vocabulary :mod:`spinexr.gate.header` reads DICOM header text with. Data only.

Keys are normalised like the header text before matching (:func:`spinexr.gate.header.normalise`:
upper case, accents stripped, ``_ - / . , ( ) \\`` and the like read as spaces), so they can be
written as people spell them. A key of several words matches those words in a row; a word
ending in ``*`` matches any word that starts with it (Russian and Polish endings vary); a key in
Chinese, Japanese or Korean script matches anywhere in the text (no spaces between words there).
To extend: add the spelling to the table of its kind and a row to ``tests/gate/test_header.py``.

Sources: the Body Part Examined defined terms of DICOM PS3.16 Annex L (CSPINE, CTSPINE, TSPINE,
TLSPINE, LSPINE, LSSPINE, SSPINE, COCCYX, SPINE and the non-spine ones such as CHEST, PELVIS,
WHOLEBODY; highdicom ships the table as ``_standard/anatomic_regions.json``); the View Position
(0018,5101) defined terms of PS3.3 (AP, PA, LL, RL, RLO, LLO; the decubitus RLD and LLD are left
without a view); the spellings departments type into Study/Series Description and Protocol Name
(English abbreviations such as C-SPINE, L/S SPINE, C SP; German LWS/BWS/HWS; Vietnamese "cot
song that lung" and "CSTL" as cited for VinDr-SpineXR, not checked against its files); and the
everyday words for the spine and other body parts in French, Spanish, Portuguese, Italian,
German, Dutch, Polish, Swedish, Turkish, Russian, Vietnamese, Chinese, Japanese and Korean.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

#: Spine regions a term can name. "whole" is the whole spine (or a scoliosis series). A term
#: naming two adjacent regions writes both, joined by "+" (CTSPINE: "cervical+thoracic").
REGIONS = ("cervical", "thoracic", "lumbar", "whole")

_SPINE: dict[str, str | None] = {
    # DICOM PS3.16 Annex L Body Part Examined defined terms.
    "SPINE": None, "CSPINE": "cervical", "CTSPINE": "cervical+thoracic", "TSPINE": "thoracic",
    "TLSPINE": "thoracic+lumbar", "LSPINE": "lumbar", "LSSPINE": "lumbar", "SSPINE": "lumbar",
    "COCCYX": "lumbar", "SPINALCORD": None,
    # English: words and department abbreviations.
    "SPINAL": None, "VERTEBRA": None, "VERTEBRAE": None, "VERTEBRAL": None, "BACK": None,
    "MYELOGRAM": None, "MYELOGRAPHY": None, "DISCOGRAM": None, "VERTEBROPLASTY": None,
    "KYPHOPLASTY": None, "KYPHOSIS": None,
    "C SPINE": "cervical", "C SP": "cervical", "CERVICAL": "cervical", "ODONTOID": "cervical",
    "DENS": "cervical", "C1 C2": "cervical", "ATLAS": "cervical",
    "T SPINE": "thoracic", "T SP": "thoracic", "D SPINE": "thoracic", "DSPINE": "thoracic",
    "L SPINE": "lumbar", "L SP": "lumbar", "LS SPINE": "lumbar", "L S SPINE": "lumbar",
    "LUMBAR": "lumbar", "LUMBOSACRAL": "lumbar", "LUMBO SACRAL": "lumbar", "SACRUM": "lumbar",
    "SACRAL": "lumbar", "LOW BACK": "lumbar",
    "TL SPINE": "thoracic+lumbar", "THORACOLUMBAR": "thoracic+lumbar",
    "CERVICOTHORACIC": "cervical+thoracic",
    "WHOLESPINE": "whole", "SCOLIOSIS": "whole", "SCOLIOSE": "whole", "SKOLIOSE": "whole",
    "ESCOLIOSIS": "whole", "ESCOLIOSE": "whole", "SCOLIOSI": "whole", "SKOLIOZ": "whole",
    "SKOLIOZA": "whole",
    # French, Spanish, Portuguese, Italian.
    "RACHIS": None, "COLONNE VERTEBRALE": None, "LOMBAIRE": "lumbar", "LOMBOSACRE": "lumbar",
    "LOMBO SACRE": "lumbar", "COLUMNA": None, "RAQUIS": None, "LUMBOSACRA": "lumbar",
    "SACRO": "lumbar", "COCCIX": "lumbar", "COLUNA": None, "LOMBAR": "lumbar",
    "LOMBOSSACRA": "lumbar", "COLONNA": None, "RACHIDE": None, "LOMBARE": "lumbar",
    "LOMBOSACRALE": "lumbar", "LOMBO SACRALE": "lumbar", "CERVICALE": "cervical",
    # German, Dutch, Polish, Swedish, Turkish.
    "WIRBELSÄULE": None, "WIRBELSAEULE": None, "LWS": "lumbar", "BWS": "thoracic",
    "HWS": "cervical", "LENDENWIRBELSAULE": "lumbar", "LENDENWIRBELSAEULE": "lumbar",
    "BRUSTWIRBELSAULE": "thoracic", "BRUSTWIRBELSAEULE": "thoracic",
    "HALSWIRBELSAULE": "cervical", "HALSWIRBELSAEULE": "cervical",
    "GANZWIRBELSAULE": "whole", "GANZWIRBELSAEULE": "whole", "KREUZBEIN": "lumbar",
    "STEISSBEIN": "lumbar", "WERVELKOLOM": None, "LWK": "lumbar", "CWK": "cervical",
    "THWK": "thoracic", "LENDENWERVELKOLOM": "lumbar", "KRĘGOSŁUP": None,
    "RYGG": None, "RYGGRAD": None, "KOTPELARE": None, "LÄNDRYGG": "lumbar",
    "HALSRYGG": "cervical", "BRÖSTRYGG": "thoracic", "OMURGA": None, "LOMBER": "lumbar",
    "LOMBOSAKRAL": "lumbar", "SERVIKAL": "cervical",
    # Russian (endings vary: stems).
    "ПОЗВОНОЧН*": None, "ПОЯСНИЧН*": "lumbar", "ШЕЙН*": "cervical", "КРЕСТЦ*": "lumbar",
    "КОПЧИК*": "lumbar", "СКОЛИОЗ*": "whole",
    # Vietnamese (VinDr-SpineXR): cot song = spine, that lung = lumbar, co = neck, nguc = chest.
    "COT SONG": None, "DOT SONG": None, "THAT LUNG": "lumbar", "CSTL": "lumbar",
    "CS THAT LUNG": "lumbar", "CS CO": "cervical", "CS NGUC": "thoracic",
    "COT SONG LUNG": None, "CS LUNG": None,
    "XUONG CUNG": "lumbar", "XUONG CUT": "lumbar",
    # Chinese, Japanese, Korean.
    "脊椎": None, "脊柱": None, "腰椎": "lumbar", "頚椎": "cervical", "頸椎": "cervical",
    "颈椎": "cervical", "胸椎": "thoracic", "胸腰椎": "thoracic+lumbar",
    "頸胸椎": "cervical+thoracic", "颈胸椎": "cervical+thoracic", "腰仙椎": "lumbar",
    "仙骨": "lumbar", "骶骨": "lumbar", "骶椎": "lumbar", "尾骨": "lumbar",
    "全脊柱": "whole", "全脊椎": "whole", "側弯": "whole", "侧弯": "whole",
    "척추": None, "요추": "lumbar", "경추": "cervical", "흉추": "thoracic", "천추": "lumbar",
    "천골": "lumbar", "미골": "lumbar", "척추측만": "whole",
}

#: Words that name a spine region only beside a spine term in the same value ("THORACIC SPINE",
#: "RACHIS DORSAL", "COT SONG CO", "ГРУДНОЙ ОТДЕЛ ПОЗВОНОЧНИКА"); alone they are no spine
#: evidence ("DORSAL HAND", "CO TAY" = wrist) or, for the few also in ``_OTHER``, a chest.
REGION_WORDS: Mapping[str, str] = MappingProxyType({
    "CERVICAL": "cervical", "CERVICALE": "cervical", "CERVICALES": "cervical",
    "CERVICAAL": "cervical", "ZERVIKAL": "cervical", "HALS": "cervical", "SZYJN*": "cervical",
    "CO": "cervical", "NECK": "cervical",
    "THORACIC": "thoracic", "THORACAL": "thoracic", "THORACIQUE": "thoracic",
    "THORAKAL": "thoracic", "THORACALE": "thoracic", "THORACAAL": "thoracic",
    "TORACICA": "thoracic", "TORACICO": "thoracic", "TORACALE": "thoracic",
    "TORAKAL": "thoracic", "DORSAL": "thoracic", "DORSALE": "thoracic", "DORSALES": "thoracic",
    "BRUST": "thoracic", "BORST": "thoracic", "PIERSIOW*": "thoracic", "ГРУДН*": "thoracic",
    "NGUC": "thoracic",
    "LUMBAR": "lumbar", "LUMBALE": "lumbar", "LUMBAAL": "lumbar", "LUMBAL": "lumbar",
    "LENDEN": "lumbar", "LEDZWI*": "lumbar", "SACRAL": "lumbar", "SACRE": "lumbar",
    "WHOLE": "whole", "FULL": "whole", "TOTAL": "whole", "ENTIRE": "whole", "ENTIER": "whole",
    "ENTIERE": "whole", "GESAMT": "whole", "GESAMTE": "whole", "GANZE": "whole",
    "COMPLETA": "whole", "TOTALE": "whole", "INTERA": "whole", "TOAN BO": "whole",
    "VEO": "whole",
})

#: Body parts other than the spine -> the part named in reasons.
_OTHER: dict[str, str] = {
    # Chest (a film of the chest shows the thoracic spine but is not a spine film).
    "CHEST": "chest", "THORAX": "chest", "LUNG": "chest", "LUNGS": "chest", "RIB": "chest",
    "RIBS": "chest", "STERNUM": "chest", "MEDIASTINUM": "chest", "CXR": "chest",
    "TORAX": "chest", "TORACE": "chest", "POUMON": "chest", "POUMONS": "chest",
    "POITRINE": "chest", "LUNGE": "chest", "LUNGEN": "chest", "PULMON": "chest",
    "PULMONES": "chest", "PULMÃO": "chest", "BORST": "chest", "BRUST": "chest",
    "KLATKA PIERSIOWA": "chest", "GÖĞÜS": "chest", "AKCİĞER": "chest", "NGUC": "chest",
    "PHOI": "chest", "ОГК": "chest", "ГРУДН* КЛЕТК*": "chest", "ЛЕГК*": "chest",
    "胸部": "chest", "肺": "chest", "흉부": "chest",
    # Head, face, teeth, breast.
    "SKULL": "skull", "HEAD": "head", "BRAIN": "head", "SINUS": "head", "SINUSES": "head",
    "FACIAL BONES": "head", "MANDIBLE": "head", "JAW": "head", "TMJ": "head", "ORBIT": "head",
    "ORBITS": "head", "NASAL BONES": "head", "CEPH": "skull", "CEPHALOMETRIC": "skull",
    "CRANE": "skull", "CRANEO": "skull", "CRANIO": "skull", "SCHÄDEL": "skull",
    "SCHAEDEL": "skull", "SCHEDEL": "skull", "CZASZKA": "skull", "KAFATASI": "skull",
    "SO NAO": "skull", "ЧЕРЕП*": "skull", "頭部": "head", "头部": "head", "頭蓋": "skull",
    "头颅": "skull",
    "TEETH": "teeth", "TOOTH": "teeth", "DENTAL": "teeth", "PANORAMIC": "teeth",
    "PANO": "teeth", "OPG": "teeth", "ORTHOPANTOMOGRAM": "teeth",
    "BITEWING": "teeth", "PERIAPICAL": "teeth", "DENTS": "teeth", "ZAHN": "teeth",
    "ZAHNE": "teeth", "DIENTES": "teeth", "DENTI": "teeth", "DENTES": "teeth",
    "TANDEN": "teeth", "歯": "teeth", "牙": "teeth",
    "BREAST": "breast", "MAMMO": "breast", "MAMMOGRAM": "breast", "MAMMOGRAPHY": "breast",
    "MAMMOGRAPHIE": "breast", "MAMOGRAFIA": "breast", "MAMMOGRAFIA": "breast",
    "MAMMA": "breast", "MAMA": "breast", "乳房": "breast", "乳腺": "breast",
    # Upper limb.
    "SHOULDER": "shoulder", "EPAULE": "shoulder", "HOMBRO": "shoulder", "OMBRO": "shoulder",
    "SPALLA": "shoulder", "SCHULTER": "shoulder", "SCHOUDER": "shoulder", "OMUZ": "shoulder",
    "KHOP VAI": "shoulder", "ПЛЕЧ*": "shoulder", "CLAVICLE": "shoulder",
    "SCAPULA": "shoulder", "ACJOINT": "shoulder", "肩": "shoulder",
    "ELBOW": "elbow", "COUDE": "elbow", "CODO": "elbow", "COTOVELO": "elbow", "GOMITO": "elbow",
    "ELLENBOGEN": "elbow", "ELLBOGEN": "elbow", "ELLEBOOG": "elbow", "DIRSEK": "elbow",
    "KHUYU TAY": "elbow", "ЛОКТ*": "elbow", "肘": "elbow",
    "WRIST": "wrist", "POIGNET": "wrist", "MUÑECA": "wrist", "PUNHO": "wrist",
    "POLSO": "wrist", "HANDGELENK": "wrist", "POLS": "wrist", "NADGARSTEK": "wrist",
    "CO TAY": "wrist", "手関節": "wrist", "腕关节": "wrist",
    "HAND": "hand", "HANDS": "hand", "MAIN": "hand", "MAINS": "hand", "MANO": "hand",
    "MAO": "hand", "DLON": "hand", "BAN TAY": "hand", "FINGER": "hand", "FINGERS": "hand",
    "THUMB": "hand", "DOIGT": "hand", "DEDO": "hand", "DITO": "hand", "POUCE": "hand",
    "FEMORAL HEAD": "hip", "FEMORAL NECK": "hip", "HUMERAL HEAD": "shoulder",
    "RADIAL HEAD": "elbow", "ARM": "arm", "ARMS": "arm", "UPPERARM": "arm", "UPPER ARM": "arm", "FOREARM": "arm",
    "HUMERUS": "arm", "RADIUS": "arm", "ULNA": "arm", "RADIUSULNA": "arm", "BRAS": "arm",
    "BRAZO": "arm", "ANTEBRAZO": "arm", "UPPERLIMB": "arm", "UPPER LIMB": "arm",
    "UPPER EXTREMITY": "arm", "EXTREMITY": "limb", "EXTREMITIES": "limb",
    # Lower limb.
    "KNEE": "knee", "KNEES": "knee", "KNIE": "knee", "GENOU": "knee", "RODILLA": "knee",
    "JOELHO": "knee", "GINOCCHIO": "knee", "KOLANO": "knee", "DIZ": "knee", "KHOP GOI": "knee",
    "PATELLA": "knee", "КОЛЕН*": "knee", "膝": "knee",
    "ANKLE": "ankle", "CHEVILLE": "ankle", "TOBILLO": "ankle", "TORNOZELO": "ankle",
    "CAVIGLIA": "ankle", "SPRUNGGELENK": "ankle", "OSG": "ankle", "ENKEL": "ankle",
    "CO CHAN": "ankle", "BILEK": "ankle", "ГОЛЕНОСТОП*": "ankle", "足関節": "ankle",
    "踝": "ankle",
    "FOOT": "foot", "FEET": "foot", "FUẞ": "foot", "FUSS": "foot", "PIED": "foot", "PIE": "foot",
    "PIEDE": "foot", "VOET": "foot", "STOPA": "foot", "AYAK": "foot", "BAN CHAN": "foot",
    "TOE": "foot", "TOES": "foot", "CALCANEUS": "foot", "HEEL": "foot", "СТОП*": "foot",
    "LEG": "leg", "LEGS": "leg", "LOWERLEG": "leg", "LOWER LEG": "leg", "FEMUR": "leg",
    "THIGH": "leg", "TIBIA": "leg", "FIBULA": "leg", "TIBIAFIBULA": "leg", "CALF": "leg",
    "LOWERLIMB": "leg", "LOWER LIMB": "leg", "LOWER EXTREMITY": "leg", "BEIN": "leg",
    "JAMBE": "leg", "PIERNA": "leg", "ГОЛЕН*": "leg",
    # Near cases: films that show part of the spine.
    "PELVIS": "pelvis", "BASSIN": "pelvis", "BECKEN": "pelvis", "PELVE": "pelvis",
    "BACINO": "pelvis", "BEKKEN": "pelvis", "MIEDNICA": "pelvis", "KHUNG CHAU": "pelvis",
    "ТАЗ*": "pelvis", "骨盤": "pelvis", "骨盆": "pelvis", "골반": "pelvis", "ILIUM": "pelvis",
    "SIJOINT": "sacroiliac joints", "SACROILIAC": "sacroiliac joints",
    "SI JOINTS": "sacroiliac joints", "SI JOINT": "sacroiliac joints",
    "SACROILIACA": "sacroiliac joints", "SACRO ILIACA": "sacroiliac joints",
    "ISG": "sacroiliac joints",
    "HIP": "hip", "HIPS": "hip", "HANCHE": "hip", "CADERA": "hip", "QUADRIL": "hip",
    "ANCA": "hip", "HÜFTE": "hip", "HUEFTE": "hip", "HEUP": "hip", "KALCA": "hip",
    "KHOP HANG": "hip", "股関節": "hip", "髋关节": "hip",
    "ABDOMEN": "abdomen", "ABDOMINAL": "abdomen", "KUB": "abdomen", "ABDOMENPELVIS": "abdomen",
    "BUIK": "abdomen", "BRZUCH": "abdomen", "KARIN": "abdomen", "BUNG": "abdomen",
    "ЖИВОТ*": "abdomen", "БРЮШН*": "abdomen", "腹部": "abdomen", "복부": "abdomen",
    "CHESTABDOMEN": "chest and abdomen", "CHESTABDPELVIS": "chest, abdomen and pelvis",
    "NECK": "neck", "SOFT TISSUE NECK": "neck", "HEADNECK": "head and neck",
    "NECKCHEST": "neck and chest", "NECKCHESTABDOMEN": "neck, chest and abdomen",
    "NECKCHESTABDPELV": "neck, chest, abdomen and pelvis", "TRUNK": "trunk",
    "UPPERTRUNK": "trunk", "LOWERTRUNK": "trunk", "WHOLEBODY": "whole body",
    "WHOLE BODY": "whole body", "SKELETAL SURVEY": "whole skeleton", "BABYGRAM": "whole body",
}

#: Parts whose films show part of the spine (a pelvis film shows L4-S1): "near cases".
NEAR_PARTS = frozenset({
    "pelvis", "sacroiliac joints", "hip", "abdomen", "chest and abdomen",
    "chest, abdomen and pelvis", "neck", "head and neck", "neck and chest",
    "neck, chest and abdomen", "neck, chest, abdomen and pelvis", "trunk", "whole body",
    "whole skeleton",
})

#: Words that look like a body part but name equipment; read first and ignored.
NOT_ANATOMY = ("C ARM", "CARM", "O ARM", "OARM", "G ARM", "U ARM")

#: term -> (verdict, region): ("spine", spine region or None) or ("other", body part).
TERMS: Mapping[str, tuple[str, str | None]] = MappingProxyType(
    {**{k: ("other", v) for k, v in _OTHER.items()},
     **{k: ("spine", v) for k, v in _SPINE.items()}})

#: Modality (0008,0060) -> (kind, body part it implies or None). Projection radiography: CR, DX,
#: RG, RF and XA spot films, and the non-standard DR / XR. Anything not listed (OT, SC, absent)
#: is unknown.
MODALITIES: Mapping[str, tuple[str, str | None]] = MappingProxyType({
    **{m: ("radiograph", None) for m in ("CR", "DX", "RG", "DR", "RF", "XA", "DF", "XR",
                                         "X RAY", "XRAY")},
    **{m: ("other", None) for m in (
        "CT", "MR", "US", "NM", "PT", "XC", "ES", "SM", "GM", "BMD", "RTIMAGE", "ECG", "EPS",
        "HD", "IVUS", "IVOCT", "OCT", "OAM", "OPM", "OPV", "SR", "KO", "PR", "SEG", "REG",
        "RTPLAN", "RTSTRUCT", "RTDOSE", "RTRECORD", "DOC", "AU", "BI", "TG", "LS", "DG")},
    "MG": ("other", "breast"), "IO": ("other", "teeth"), "PX": ("other", "teeth"),
    "OP": ("other", "eye"), "OPT": ("other", "eye"),
})

#: View words (View Position, descriptions) -> view. "ap" is any frontal view (AP or PA); a
#: word naming two views joins them with "+" (zh "正侧位": AP and lateral).
VIEW_TERMS: Mapping[str, str] = MappingProxyType({
    **{t: "ap" for t in (
        "AP", "PA", "A P", "P A", "FRONTAL", "FACE", "DE FACE", "FRENTE", "ANTEROPOSTERIOR",
        "POSTEROANTERIOR", "THANG", "ПРЯМ*", "正位", "正面", "정면")},
    **{t: "lateral" for t in (
        "LL", "RL", "LAT", "LATERAL", "LATERALE", "LATERAAL", "SEITLICH", "SEITL", "PROFIL",
        "PERFIL", "NGHIENG", "BOCZN*", "БОКОВ*", "側面", "侧位", "側位", "측면")},
    **{t: "oblique" for t in (
        "OBL", "OBLIQUE", "OBLIQUA", "OBLICUA", "OBLIQUO", "SCHRAG", "SCHRAEG", "LAO", "RAO",
        "LPO", "RPO", "RLO", "LLO", "CHECH", "SKOSN*", "КОСА*", "КОСО*", "斜位")},
    **{t: "odontoid" for t in (
        "ODONTOID", "OPEN MOUTH", "OPENMOUTH", "DENS", "TRANSORAL", "BOUCHE OUVERTE",
        "BOCA ABIERTA", "BOCCA APERTA", "HA MIENG", "C1 C2")},
    **{t: "flexion" for t in (
        "FLEX", "FLEXION", "FLEXAO", "FLESSIONE", "INKLINATION", "ANTEFLEXION", "CUI", "前屈",
        "屈曲")},
    **{t: "extension" for t in (
        "EXT", "EXTENSION", "EXTENSAO", "ESTENSIONE", "REKLINATION", "RETROFLEXION", "NGUA",
        "後屈", "后伸", "伸展")},
    "正侧位": "ap+lateral", "正側位": "ap+lateral",
})
#: Views that say more than a projection: they win over ap/lateral/oblique in the same value.
SPECIFIC_VIEWS = ("odontoid", "flexion", "extension")
