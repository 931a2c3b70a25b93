rule cfse_control:
    input:
        **imported_gates("cfse"),
        fcs=raw_file,
        checksum=checksum_file,
    output:
        summary="results/cfse/{sample}/control.json",
        status="results/cfse/{sample}/status.json",
        figure=report(
            "results/cfse/{sample}/control.png",
            caption="../report/cfse_control.rst",
            category="CFSE",
            subcategory="Controls",
            labels={"sample": "{sample}", "figure": "control"},
        ),
    log:
        "logs/cfse/{sample}.control.log",
    wildcard_constraints:
        sample=one_of(CFSE_CONTROLS),
    threads: 1
    resources:
        mem_mb=lambda wc, input: 500 + 20 * input_mb(input),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("cfse"),
        sheet=SHEET_FILE,
        row=sheet_row,
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} cfse-control {input.fcs:q} --checksum {input.checksum:q} --sheet {params.sheet:q}"
        " --sample-id {wildcards.sample}"
        " --settings {params.settings:q} {params.outputs} 2> {log:q}"


rule cfse_sample:
    input:
        unpack(cfse_controls),
        **imported_gates("cfse"),
        fcs=raw_file,
        checksum=checksum_file,
    output:
        **CFSE_EXPORT_FCS,
        status="results/cfse/{sample}/status.json",
        indices="results/cfse/{sample}/indices.tsv",
        generations="results/cfse/{sample}/generations.tsv",
        gates="results/cfse/{sample}/gates.tsv",
        histogram="results/cfse/{sample}/histogram.tsv",
        histogram_figure=report(
            "results/cfse/{sample}/histogram.png",
            caption="../report/cfse_histogram.rst",
            category="CFSE",
            subcategory="Generation fits",
            labels={"sample": "{sample}", "figure": "histogram"},
        ),
        generations_figure=report(
            "results/cfse/{sample}/generations.png",
            caption="../report/cfse_generations.rst",
            category="CFSE",
            subcategory="Generation fractions",
            labels={"sample": "{sample}", "figure": "generations"},
        ),
        gating_figure=report(
            "results/cfse/{sample}/gating.png",
            caption="../report/cfse_gating.rst",
            category="QC",
            subcategory="CFSE gating",
            labels={"sample": "{sample}", "figure": "gating"},
        ),
        gates_xml="results/cfse/{sample}/gates.xml",
        by_generation="results/cfse/{sample}/by_generation.tsv",
        by_generation_figure=report(
            "results/cfse/{sample}/by_generation.png",
            caption="../report/cfse_by_generation.rst",
            category="CFSE",
            subcategory="Markers by generation",
            labels={"sample": "{sample}", "figure": "by generation"},
        ),
    log:
        "logs/cfse/{sample}.log",
    wildcard_constraints:
        sample=one_of(CFSE_SAMPLES),
    threads: 1
    resources:
        mem_mb=lambda wc, input: 800 + 20 * input_mb(input),
        runtime=20,
    params:
        zincassay=ZINCASSAY,
        settings=settings("cfse"),
        sheet=SHEET_FILE,
        row=sheet_row,
        controls=lambda wc, input: flags(
            {
                k: v
                for k, v in input.items()
                if k not in ("fcs", "checksum", "gates_file")
            }
        ),
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} cfse-sample {input.fcs:q} --checksum {input.checksum:q} --sheet {params.sheet:q}"
        " --sample-id {wildcards.sample}"
        " --settings {params.settings:q} {params.controls} {params.outputs} 2> {log:q}"


rule cfse_collect:
    input:
        indices=expand("results/cfse/{sample}/indices.tsv", sample=CFSE_SAMPLES),
        generations=expand("results/cfse/{sample}/generations.tsv", sample=CFSE_SAMPLES),
        gates=expand("results/cfse/{sample}/gates.tsv", sample=CFSE_SAMPLES),
        by_generation=expand(
            "results/cfse/{sample}/by_generation.tsv", sample=CFSE_SAMPLES
        ),
    output:
        indices="results/cfse/indices.tsv",
        generations="results/cfse/generations.tsv",
        gates="results/cfse/gates.tsv",
        by_generation="results/cfse/by_generation.tsv",
    log:
        "logs/cfse/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        outputs=lambda wc, output: outs(output),
    shell:
        "{params.zincassay} collect {params.outputs} {input:q} 2> {log:q}"
