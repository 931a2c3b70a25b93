rule conditions:
    input:
        cfse_indices=["results/cfse/indices.tsv"] if CFSE_SAMPLES else [],
        cfse_gates=["results/cfse/gates.tsv"] if CFSE_SAMPLES else [],
        cfse_histograms=expand(
            "results/cfse/{sample}/histogram.tsv", sample=CFSE_SAMPLES
        ),
        imaging_summary=["results/imaging/summary.tsv"] if IMAGING_SAMPLES else [],
        imaging_cells=["results/imaging/cells.tsv"] if IMAGING_SAMPLES else [],
    output:
        conditions=report(
            "results/summary/conditions.tsv",
            caption="../report/conditions_table.rst",
            category="Conditions",
            labels={"table": "conditions"},
        ),
        qc=report(
            "results/summary/qc.tsv",
            caption="../report/qc_table.rst",
            category="QC",
            labels={"table": "qc"},
        ),
        cfse=report(
            "results/summary/cfse_conditions.png",
            caption="../report/conditions_cfse.rst",
            category="Conditions",
            labels={"figure": "CFSE indices per donor"},
        ),
        imaging=report(
            "results/summary/imaging_conditions.png",
            caption="../report/conditions_imaging.rst",
            category="Conditions",
            labels={"figure": "free zinc per donor"},
        ),
        zinc=report(
            "results/summary/zinc_distributions.png",
            caption="../report/conditions_zinc_distributions.rst",
            category="Conditions",
            labels={"figure": "[Zn2+] per cell"},
        ),
        overlay=report(
            "results/summary/cfse_overlay.png",
            caption="../report/conditions_cfse_overlay.rst",
            category="Conditions",
            labels={"figure": "CFSE histograms per donor"},
        ),
    log:
        "logs/summary/conditions.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input: 1000 + 4 * max(int(input.size_mb), 1),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=json.dumps(config["conditions"], sort_keys=True),
        optional=lambda wc, input: " ".join(
            f"--{k.replace('_', '-')} {input[k][0]}"
            for k in ("cfse_indices", "cfse_gates", "imaging_summary", "imaging_cells")
            if input[k]
        ),
    shell:
        "{params.zincassay} conditions --settings {params.settings:q} {params.optional}"
        " --outdir results/summary {input.cfse_histograms:q} 2> {log:q}"


rule provenance:
    input:
        results=[p for p in final_outputs() if not p.startswith("results/provenance")],
        raw=lambda wc: sorted(SHEET["path"]),
        sheet=config["samples"],
    output:
        provenance="results/provenance.json",
        config=report(
            "results/summary/config.yaml",
            caption="../report/provenance_config.rst",
            category="Provenance",
            labels={"file": "resolved config"},
        ),
        sheet=report(
            "results/summary/samples.tsv",
            caption="../report/provenance_sheet.rst",
            category="Provenance",
            labels={"file": "sample sheet"},
        ),
    log:
        "logs/summary/provenance.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=lambda wc, input: 10 + max(int(input.size_mb), 1) // 500,
    params:
        zincassay=ZINCASSAY,
        config=json.dumps(config, sort_keys=True, default=str),
        workflow_dir=workflow.basedir,
    shell:
        "{params.zincassay} provenance --config {params.config:q} --sheet {input.sheet:q}"
        " --workflow-dir {params.workflow_dir:q} --out {output.provenance:q} --config-copy {output.config:q}"
        " --sheet-copy {output.sheet:q} {input.raw:q} 2> {log:q}"
