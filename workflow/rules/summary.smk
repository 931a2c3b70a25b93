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
        cfse_figure=report(
            "results/summary/cfse_conditions.png",
            caption="../report/conditions_cfse.rst",
            category="Conditions",
            labels={"figure": "CFSE indices per donor"},
        ),
        imaging_figure=report(
            "results/summary/imaging_conditions.png",
            caption="../report/conditions_imaging.rst",
            category="Conditions",
            labels={"figure": "free zinc per donor"},
        ),
        zinc_figure=report(
            "results/summary/zinc_distributions.png",
            caption="../report/conditions_zinc_distributions.rst",
            category="Conditions",
            labels={"figure": "[Zn2+] per cell"},
        ),
        overlay_figure=report(
            "results/summary/cfse_overlay.png",
            caption="../report/conditions_cfse_overlay.rst",
            category="Conditions",
            labels={"figure": "CFSE histograms per donor"},
        ),
    log:
        "logs/summary/conditions.log",
    threads: 1
    resources:
        mem_mb=lambda wc, input: 1000 + 4 * input_mb(input),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("conditions"),
        tables=lambda wc, input: flags(
            {k: v[0] for k, v in input.items() if k != "cfse_histograms" and v}
        ),
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} conditions --settings {params.settings:q} {params.tables} {params.outputs}"
        " {input.cfse_histograms:q} 2> {log:q}"


rule provenance:
    input:
        results=final_outputs(),
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
    threads: 1
    resources:
        mem_mb=500,
        runtime=lambda wc, input: 10 + input_mb(input) // 500,
    params:
        zincassay=ZINCASSAY,
        config=json.dumps(config, sort_keys=True, default=str),
        workflow_dir=workflow.basedir,
    shell:
        "{params.zincassay} provenance --config {params.config:q} --sheet {input.sheet:q}"
        " --workflow-dir {params.workflow_dir:q} --out {output.provenance:q} --config-copy {output.config:q}"
        " --sheet-copy {output.sheet:q} {input.raw:q} 2> {log:q}"
