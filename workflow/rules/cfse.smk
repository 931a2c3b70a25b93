rule cfse_control:
    input:
        fcs=raw_file,
    output:
        summary="results/cfse/{sample}/control.json",
        figure=report(
            "results/cfse/{sample}/control.png",
            caption="../report/cfse_control.rst",
            category="CFSE",
            subcategory="Controls",
            labels={"sample": "{sample}", "figure": "control"},
        ),
    log:
        "logs/cfse/{sample}.control.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input: 500 + 20 * max(int(input.size_mb), 1),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        role=lambda wc: SHEET.loc[wc.sample, "role"],
        settings=json.dumps(config["cfse"], sort_keys=True),
    shell:
        "{params.zincassay} cfse-control {input.fcs:q} --role {params.role} --sample-id {wildcards.sample}"
        " --settings {params.settings:q} --out {output.summary:q} --figure {output.figure:q} 2> {log:q}"


rule cfse_sample:
    input:
        fcs=raw_file,
        unstimulated=lambda wc: f"results/cfse/{SHEET.loc[wc.sample, 'unstimulated']}/control.json",
        unstained=lambda wc: (
            f"results/cfse/{SHEET.loc[wc.sample, 'unstained']}/control.json"
            if SHEET.loc[wc.sample, "unstained"]
            else []
        ),
    output:
        indices="results/cfse/{sample}/indices.tsv",
        generations="results/cfse/{sample}/generations.tsv",
        gates="results/cfse/{sample}/gates.tsv",
        histogram_table="results/cfse/{sample}/histogram.tsv",
        histogram=report(
            "results/cfse/{sample}/histogram.png",
            caption="../report/cfse_histogram.rst",
            category="CFSE",
            subcategory="Generation fits",
            labels={"sample": "{sample}", "figure": "histogram"},
        ),
        bars=report(
            "results/cfse/{sample}/generations.png",
            caption="../report/cfse_generations.rst",
            category="CFSE",
            subcategory="Generation fractions",
            labels={"sample": "{sample}", "figure": "generations"},
        ),
        gating=report(
            "results/cfse/{sample}/gating.png",
            caption="../report/cfse_gating.rst",
            category="QC",
            subcategory="CFSE gating",
            labels={"sample": "{sample}", "figure": "gating"},
        ),
    log:
        "logs/cfse/{sample}.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input: 800 + 20 * max(int(input.size_mb), 1),
        runtime=20,
    params:
        zincassay=ZINCASSAY,
        settings=json.dumps(config["cfse"], sort_keys=True),
        meta=lambda wc: sample_meta(wc.sample),
        unstained=lambda wc, input: (
            f"--unstained {input.unstained}" if input.unstained else ""
        ),
        outdir=lambda wc: f"results/cfse/{wc.sample}",
    shell:
        "{params.zincassay} cfse-sample {input.fcs:q} --settings {params.settings:q} --meta {params.meta:q}"
        " --unstimulated {input.unstimulated:q} {params.unstained} --outdir {params.outdir:q} 2> {log:q}"


rule cfse_collect:
    input:
        expand("results/cfse/{sample}/indices.tsv", sample=CFSE_SAMPLES),
        expand("results/cfse/{sample}/generations.tsv", sample=CFSE_SAMPLES),
        expand("results/cfse/{sample}/gates.tsv", sample=CFSE_SAMPLES),
    output:
        "results/cfse/indices.tsv",
        "results/cfse/generations.tsv",
        "results/cfse/gates.tsv",
    log:
        "logs/cfse/collect.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        dirs=expand("results/cfse/{sample}", sample=CFSE_SAMPLES),
    shell:
        "{params.zincassay} cfse-collect --outdir results/cfse {params.dirs:q} 2> {log:q}"
