rule conditions:
    input:
        unpack(summary_inputs),
    output:
        **summary_figures(),
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
        overview="results/summary/overview.rst",
    log:
        "logs/summary/conditions.log",
    threads: 1
    resources:
        mem_mb=lambda wc, input: 1000 + 4 * input_mb(input),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("conditions"),
        sheet=SHEET_FILE,
        tables=table_flags,
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} conditions --settings {params.settings:q} --sheet {params.sheet:q} {params.tables}"
        " {params.outputs}"
        " --histograms {input.cfse_histograms:q} --statuses {input.statuses:q} 2> {log:q}"


rule dose_response:
    input:
        tables=[path for path, samples in ASSAY_TABLES.values() if samples],
        sheet=config["samples"],
    output:
        **dose_response_figures(),
        fits=report(
            "results/summary/dose_response.tsv",
            caption="../report/dose_response_table.rst",
            category="Dose response",
            labels={"table": "fits per donor"},
        ),
        sources=report(
            "results/summary/dose_response_sources.tsv",
            caption="../report/dose_response_sources.rst",
            category="Dose response",
            labels={"table": "sources compared"},
        ),
    log:
        "logs/summary/dose_response.log",
    threads: 1
    resources:
        mem_mb=lambda wc, input: 1000 + 4 * input_mb(input),
        runtime=20,
    params:
        zincassay=ZINCASSAY,
        settings=settings("conditions"),
        tables=assay_table_flags(),
        outputs=lambda wc, output: " ".join(
            (
                f"--figure {name[len('figure_'):]}={shlex.quote(path)}"
                if name.startswith("figure_")
                else f"--{name} {shlex.quote(path)}"
            )
            for name, path in output.items()
        ),
    shell:
        "{params.zincassay} dose-response --settings {params.settings:q} --sheet {input.sheet:q} {params.tables}"
        " {params.outputs} 2> {log:q}"


rule provenance:
    input:
        results=final_outputs(),
        statuses=ALL_STATUS_FILES,
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
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        config=json.dumps(config, sort_keys=True, default=str),
    shell:
        "{params.zincassay} provenance --config {params.config:q} --sheet {input.sheet:q}"
        " --out {output.provenance:q} --config-copy {output.config:q}"
        " --sheet-copy {output.sheet:q} {input.statuses:q} 2> {log:q}"
