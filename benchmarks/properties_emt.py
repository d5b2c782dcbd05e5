"""Property benchmarks with reference calculators: Cu/EMT timings and values, the silicon
suite with Stillinger-Weber against the GAP-18 DFT table, and MD diffusivities.

    python benchmarks/properties_emt.py [--json OUT] [--quick] [--data DIR]

Every property runs with its default settings (``--quick``: the ``fast()`` settings) and
one BLAS thread; the goal is at most 60 s per property on two cores.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Result, base_parser, timed  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mlip_plugin.properties import (  # noqa: E402
    DefectSettings,
    ElasticSettings,
    EOSSettings,
    MDSettings,
    PhononSettings,
    SuiteSettings,
    SurfaceSettings,
    compare,
    elastic_constants,
    equation_of_state,
    format_table,
    nvt_md,
    phonons,
    point_defect,
    run_suite,
    surface_energy,
)

#: Cu/EMT values verified by hand-written ASE code and the libraries (ECOSYSTEM.md).
CU_EMT = {"c11": 172.6, "c12": 115.4, "c44": 89.9, "vacancy_formation": 1.224,
          "surface_111": 1.044}


def stillinger_weber():
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms import StillingerWeber
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        Stillinger_Weber_PRB_31_5262_Si,
    )

    return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si))


def cu_properties(quick: bool, result: Result) -> dict:
    """Each Cu/EMT property once, timed; returns name -> value."""
    pick = (lambda cls, *a: cls.fast(*a)) if quick else (lambda cls, *a: cls())
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    jobs = {
        "eos": lambda: equation_of_state(EMT(), cu, pick(EOSSettings)),
        "elastic": lambda: elastic_constants(EMT(), cu, pick(ElasticSettings)),
        "elastic_clamped_ion": lambda: elastic_constants(
            EMT(), cu, replace(pick(ElasticSettings), relaxed_ion=False)),
        "phonons": lambda: phonons(EMT(), bulk("Cu", "fcc", a=3.6), pick(PhononSettings)),
        "md_300K": lambda: nvt_md(EMT(), cu * (3, 3, 3), pick(MDSettings)),
    }
    for site in ("vacancy", "octahedral", "tetrahedral", "dumbbell"):
        jobs[f"defect_{site}"] = lambda s=site: point_defect(
            EMT(), cu, replace(pick(DefectSettings), defect=s))
    for miller in ((1, 1, 1), (1, 0, 0), (1, 1, 0)):
        jobs["surface_" + "".join(map(str, miller))] = lambda m=miller: surface_energy(
            EMT(), cu, replace(pick(SurfaceSettings), miller=m))
    values, outputs = {}, {}
    for name, job in jobs.items():
        with timed() as t:
            outputs[name] = job()
        result.figures[f"seconds_{name}"] = round(t.seconds, 2)
        result.target(f"time {name} (s)", t.seconds, "<= 60", t.seconds <= 60)
        print(f"  {name:<24} {t.seconds:7.1f} s")
    el = outputs["elastic"]
    values.update(c11=el.c11, c12=el.c12, c44=el.c44,
                  c44_clamped_ion=outputs["elastic_clamped_ion"].c44,
                  vacancy_formation=outputs["defect_vacancy"].formation_energy,
                  surface_111=outputs["surface_111"].surface_energy,
                  a0=outputs["eos"].a0, bulk_modulus=outputs["eos"].bulk_modulus,
                  phonon_max_THz=outputs["phonons"].max_frequency,
                  md_300K_D=outputs["md_300K"].diffusivity,
                  md_300K_D_err=outputs["md_300K"].diffusivity_error)
    for site in ("octahedral", "tetrahedral", "dumbbell"):
        values[f"interstitial_{site}"] = outputs[f"defect_{site}"].formation_energy
    for key in ("100", "110"):
        values[f"surface_{key}"] = outputs[f"surface_{key}"].surface_energy
    return values


def liquid_diffusivity(quick: bool, result: Result) -> dict:
    """Melt Cu/EMT at liquid density (3000 K), then D at 2000 K."""
    start = bulk("Cu", "fcc", a=3.59 * 1.035, cubic=True) * (3, 3, 3)
    with timed() as t:
        melt = nvt_md(EMT(), start, MDSettings(temperature=3000.0, steps=600,
                                               equilibration_steps=100, n_blocks=2))
        settings = MDSettings.fast(2000.0) if quick else MDSettings(temperature=2000.0)
        liquid = nvt_md(EMT(), melt.structure, settings)
    result.figures["seconds_md_liquid"] = round(t.seconds, 2)
    result.target("time md_2000K incl. melting (s)", t.seconds, "<= 60", t.seconds <= 60)
    result.target("liquid D > 3 sigma", liquid.diffusivity / liquid.diffusivity_error, "> 3",
                  liquid.diffusivity > 3 * liquid.diffusivity_error)
    return {"md_2000K_D": liquid.diffusivity, "md_2000K_D_err": liquid.diffusivity_error,
            "md_2000K_stable": liquid.stable}


def main() -> None:
    parser = base_parser("properties_emt", __doc__)
    args = parser.parse_args()
    result = Result("properties_emt", settings={"quick": args.quick, "blas_threads": 1})
    with threadpool_limits(1, user_api="blas"):
        print("== Cu with EMT: time per property")
        cu = cu_properties(args.quick, result)
        cu.update(liquid_diffusivity(args.quick, result))
        for row in compare({k: v for k, v in cu.items() if k in CU_EMT}, CU_EMT):
            result.target(f"Cu/EMT {row['name']} vs verified", row["model"],
                          f"{row['reference']} ±1%", abs(row["error_percent"]) < 1.0)
        d, err = cu["md_300K_D"], cu["md_300K_D_err"]
        result.target("crystal 300 K |D| < 3 sigma (Å^2/ps)", d, f"|D| < {3 * err:.2g}",
                      abs(d) < 3 * err)
        result.figures["cu_emt"] = cu
        print(json.dumps(cu, indent=1, default=float))
        print("\n== silicon suite with Stillinger-Weber")
        settings = SuiteSettings.fast() if args.quick else SuiteSettings()
        with timed() as t:
            suite = run_suite(stillinger_weber(), "silicon", settings)
        print(format_table(suite.rows))
        result.figures["si_sw_table"] = suite.rows
        result.figures["si_sw_seconds"] = {k: round(v, 2) for k, v in suite.timings.items()}
        result.figures["si_sw_total_seconds"] = round(t.seconds, 1)
        for name, seconds in suite.timings.items():
            result.target(f"time Si/SW {name} (s)", seconds, "<= 60", seconds <= 60)
    reference = Path(args.data) / "si_gap18_reference" / "properties.json"
    if reference.is_file():
        rows = compare(suite, json.loads(reference.read_text()))
        print("\n== Si/SW against GAP-18 DFT (PW91)\n" + format_table(rows))
        result.figures["si_sw_vs_dft"] = rows
    result.finish(args.json)


if __name__ == "__main__":
    main()
