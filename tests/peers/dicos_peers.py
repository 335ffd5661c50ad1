"""Independent readers of Twinspect's DICOS files, for tests/dicos.rs.

For every file given: pydicom (the reference Python DICOM reader) reads the data set, pyDICOS
(Stratovan's SDICOS toolkit, which validates DICOS modules as it reads) reads it as a DX or TDR,
and for DX images a DICOM twin (same elements, the SOP class of a DICOM "DX for processing"
image, the DICOS-only elements DICOM does not define removed) is written for dciodvfy to check
against the DICOM DX IOD that DICOS DX derives from. Prints one JSON object per file.
"""
import json
import os
import sys

import numpy as np
import pydicom
import pydicos
import pyDICOS

DICOM_DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
# Elements DICOS defines and DICOM does not (or defines with another meaning).
DICOS_ONLY = [(0x0008, 0x0118), (0x0008, 0x2108), (0x4300, 0x0902), (0x6100, 0x0030), (0x6100, 0x0031)]


def dx(path, ds, out):
    px = ds.pixel_array
    out["rows"], out["cols"] = int(ds.Rows), int(ds.Columns)
    out["energy"] = int(ds[0x6100, 0x0030].value)
    out["energy_description"] = str(ds[0x6100, 0x0031].value)
    out["pixel_sum"] = int(px.astype(np.uint64).sum())
    out["pixels_path"] = path + ".npy"
    np.save(out["pixels_path"], px)
    out["photometric"] = str(ds.PhotometricInterpretation)
    out["spacing"] = [float(v) for v in ds.ImagerPixelSpacing]
    loaded = pydicos.DXLoader(path)
    sd = loaded.get_data()
    out["pydicos_shape"] = list(sd.shape)
    out["pydicos_equal"] = bool(np.array_equal(np.asarray(sd).reshape(px.shape), px))
    # SDICOS's validator (what its writer checks before writing), on the file as read.
    out["image_type"] = [str(v) for v in ds.ImageType]
    err = pyDICOS.ErrorLog()
    out["sdicos_valid"] = bool(loaded.Validate(err))
    out["sdicos_errors"] = err.GetErrorLog().Get().strip()
    twin = pydicom.dcmread(path)
    for t in DICOS_ONLY:
        if t in twin:
            del twin[t]
    if (0x0002, 0x0004) in twin.file_meta:
        del twin.file_meta[0x0002, 0x0004]
    # DICOS's Image Type Value 2 says what the pixels are (INTENSITY); DICOM DX's says PRIMARY.
    twin.ImageType = ["ORIGINAL", "PRIMARY"]
    twin.SOPClassUID = DICOM_DX_FOR_PROCESSING
    twin.file_meta.MediaStorageSOPClassUID = DICOM_DX_FOR_PROCESSING
    out["dicom_twin"] = path + ".dicom-twin.dcm"
    twin.save_as(out["dicom_twin"], enforce_file_format=True)


def tdr(path, ds, out):
    op = ds[0x0008, 0x1072][0]
    codes = op[0x0040, 0x1101].value
    out["operator"] = str(codes[0].CodeValue)
    out["operator_name"] = str(codes[0].CodeMeaning)
    out["organization"] = str(op.InstitutionName)
    out["alarm_decision"] = str(ds.AlarmDecision)
    out["tdr_type"] = str(ds.TDRType)
    out["referenced"] = sorted(str(i.ReferencedSOPInstanceUID) for i in ds[0x0008, 0x1110])
    out["referenced_series"] = sorted(str(s.SeriesInstanceUID) for s in ds.ReferencedSeriesSequence)
    ptos = []
    for t in ds.ThreatSequence:
        rep = t.PTORepresentationSequence[0]
        a = t.ATDAssessmentSequence[0]
        poly = [float(v) for v in rep.BoundingPolygon]
        roi = rep.ThreatROIVoxelSequence[0]
        ptos.append({
            "id": int(t.PotentialThreatObjectID),
            "category": str(a.ThreatCategory),
            "description": str(a.ThreatCategoryDescription),
            "flag": str(a.ATDAssessmentFlag),
            "polygon": [poly[i:i + 2] for i in range(0, len(poly), 3)],
            "base": [float(v) for v in roi.ThreatROIBase],
            "extents": [float(v) for v in roi.ThreatROIExtents],
            "referenced": sorted(str(i.ReferencedSOPInstanceUID) for i in rep.ReferencedInstanceSequence),
        })
    out["ptos"] = ptos
    out["series_description"] = str(ds.SeriesDescription)
    out["alarm_decision_time"] = str(ds.AlarmDecisionTime)
    out["objects"] = int(ds.NumberOfTotalObjects)
    out["alarm_objects"] = int(ds.NumberOfAlarmObjects)
    # Twinspect's private block: the creator in (0011,0010) owns (0011,10xx).
    creator = ds.get((0x0011, 0x0010))
    out["private_creator"] = str(creator.value) if creator is not None else None
    treatment = ds.get((0x0011, 0x1001))
    out["treatment"] = str(treatment.value) if treatment is not None else None
    # SDICOS's checks: its TDR class has no Validate in Python, but writing checks every module
    # (as DX.Validate does): the file as SDICOS read it, written again.
    t = pyDICOS.TDR()
    err = pyDICOS.ErrorLog()
    out["sdicos_read"] = bool(t.Read(pyDICOS.Filename(path), err, None))
    err = pyDICOS.ErrorLog()
    out["sdicos_rewritten"] = bool(t.Write(pyDICOS.Filename(path[:-4] + ".sdicos.dcs"), err))
    out["sdicos_rewrite_errors"] = [l for l in err.GetErrorLog().Get().splitlines() if l.strip()]
    rewritten = path[:-4] + ".sdicos.dcs"
    if os.path.exists(rewritten):
        # What SDICOS kept of the operator's identification: its own writer's items.
        again = pydicom.dcmread(rewritten)
        if (0x0008, 0x1072) in again:
            codes = again[0x0008, 0x1072][0][0x0040, 0x1101].value
            out["sdicos_operator"] = [[str(c.get("CodeValue", "")), str(c.get("CodeMeaning", ""))]
                                      for c in codes]
        os.remove(rewritten)
    sd = pydicos.TDRLoader(path).get_data()
    out["pydicos_alarm"] = sd["AlarmDecision"].name
    out["pydicos_type"] = sd["TDRType"].name
    out["pydicos_ooi"] = sd["OOIID"]
    out["pydicos_ptos"] = [{
        "id": int(p["ID"]),
        "category": p["Assessment"]["category"].name,
        "flag": p["Assessment"]["flag"].name,
        "description": p["Assessment"]["description"],
        "polygon": [[q["x"], q["y"]] for q in p["Polygon"]],
        "base": [p["Base"]["x"], p["Base"]["y"]],
    } for p in sd["PTOs"]]


for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    out = {
        "file": path,
        "sop_class": str(ds.SOPClassUID),
        "sop_instance": str(ds.SOPInstanceUID),
        "study": str(ds.StudyInstanceUID),
        "series": str(ds.SeriesInstanceUID),
        "frame_of_reference": str(ds.FrameOfReferenceUID),
        "modality": str(ds.Modality),
        "ooi_id": str(ds.PatientID),
        "dicos_version": str(ds[0x4010, 0x103A].value),
        "meta_dicos_version": str(ds.file_meta[0x0002, 0x0004].value),
    }
    if out["modality"] == "DX":
        dx(path, ds, out)
    else:
        tdr(path, ds, out)
    print(json.dumps(out, ensure_ascii=False))
