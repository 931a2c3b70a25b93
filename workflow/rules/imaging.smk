rule imaging_sample:
    input:
        stack=raw_file,
    output:
        cells="results/imaging/{sample}/cells.tsv",
        summary="results/imaging/{sample}/summary.tsv",
        frames="results/imaging/{sample}/frames.tsv",
        traces="results/imaging/{sample}/traces.tsv.gz",
        labels="results/imaging/{sample}/labels.tif",
        segmentation=report(
            "results/imaging/{sample}/segmentation.png",
            caption="../report/imaging_segmentation.rst",
            category="Imaging",
            subcategory="Segmentation",
            labels={"sample": "{sample}", "figure": "segmentation"},
        ),
        raw=report(
            "results/imaging/{sample}/raw_traces.png",
            caption="../report/imaging_raw_traces.rst",
            category="QC",
            subcategory="Imaging raw traces",
            labels={"sample": "{sample}", "figure": "raw traces"},
        ),
        zinc=report(
            "results/imaging/{sample}/zinc_traces.png",
            caption="../report/imaging_zinc_traces.rst",
            category="Imaging",
            subcategory="Calibrated [Zn2+]",
            labels={"sample": "{sample}", "figure": "zinc traces"},
        ),
        baseline_peak=report(
            "results/imaging/{sample}/baseline_peak.png",
            caption="../report/imaging_baseline_peak.rst",
            category="Imaging",
            subcategory="Baseline vs peak",
            labels={"sample": "{sample}", "figure": "baseline vs peak"},
        ),
    log:
        "logs/imaging/{sample}.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        # the stack is memory-mapped; traces and figures need about twice its size on top
        mem_mb=lambda wc, input: 800 + 3 * max(int(input.size_mb), 1),
        runtime=lambda wc, input: 10 + max(int(input.size_mb), 1) // 100,
    params:
        zincassay=ZINCASSAY,
        settings=json.dumps(config["imaging"], sort_keys=True),
        meta=lambda wc: imaging_meta(wc.sample),
        extra=json.dumps(EXTRA_COLUMNS),
        outdir=lambda wc: f"results/imaging/{wc.sample}",
    shell:
        "{params.zincassay} imaging-sample {input.stack:q} --settings {params.settings:q} --meta {params.meta:q}"
        " --extra {params.extra:q} --outdir {params.outdir:q} 2> {log:q}"


rule imaging_collect:
    input:
        expand(
            "results/imaging/{sample}/{name}",
            sample=IMAGING_SAMPLES,
            name=["cells.tsv", "summary.tsv", "frames.tsv", "traces.tsv.gz"],
        ),
    output:
        "results/imaging/cells.tsv",
        "results/imaging/summary.tsv",
        "results/imaging/frames.tsv",
        "results/imaging/traces.tsv.gz",
    log:
        "logs/imaging/collect.log",
    conda:
        "../envs/zincassay.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc, input: 1000 + 4 * max(int(input.size_mb), 1),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        dirs=expand("results/imaging/{sample}", sample=IMAGING_SAMPLES),
    shell:
        "{params.zincassay} imaging-collect --outdir results/imaging {params.dirs:q} 2> {log:q}"
