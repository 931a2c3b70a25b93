rule imaging_sample:
    input:
        stack=raw_file,
        checksum=checksum_file,
    output:
        status="results/imaging/{sample}/status.json",
        cells="results/imaging/{sample}/cells.tsv",
        summary="results/imaging/{sample}/summary.tsv",
        frames="results/imaging/{sample}/frames.tsv",
        traces="results/imaging/{sample}/traces.tsv.gz",
        labels="results/imaging/{sample}/labels.tif",
        segmentation_figure=report(
            "results/imaging/{sample}/segmentation.png",
            caption="../report/imaging_segmentation.rst",
            category="Imaging",
            subcategory="Segmentation",
            labels={"sample": "{sample}", "figure": "segmentation"},
        ),
        raw_traces_figure=report(
            "results/imaging/{sample}/raw_traces.png",
            caption="../report/imaging_raw_traces.rst",
            category="QC",
            subcategory="Imaging raw traces",
            labels={"sample": "{sample}", "figure": "raw traces"},
        ),
        zinc_traces_figure=report(
            "results/imaging/{sample}/zinc_traces.png",
            caption="../report/imaging_zinc_traces.rst",
            category="Imaging",
            subcategory="Calibrated [Zn2+]",
            labels={"sample": "{sample}", "figure": "zinc traces"},
        ),
        baseline_peak_figure=report(
            "results/imaging/{sample}/baseline_peak.png",
            caption="../report/imaging_baseline_peak.rst",
            category="Imaging",
            subcategory="Baseline vs peak",
            labels={"sample": "{sample}", "figure": "baseline vs peak"},
        ),
    log:
        "logs/imaging/{sample}.log",
    wildcard_constraints:
        sample=one_of(IMAGING_SAMPLES),
    threads: 1
    resources:
        # the stack is memory-mapped; traces and figures need about twice its size on top
        mem_mb=lambda wc, input: 800 + 3 * input_mb(input),
        runtime=lambda wc, input: 10 + input_mb(input) // 100,
    params:
        zincassay=ZINCASSAY,
        settings=settings("imaging"),
        sheet=SHEET_FILE,
        row=sheet_row,
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} imaging-sample {input.stack:q} --checksum {input.checksum:q} --sheet {params.sheet:q}"
        " --sample-id {wildcards.sample}"
        " --settings {params.settings:q} {params.outputs} 2> {log:q}"


rule imaging_collect:
    input:
        cells=expand("results/imaging/{sample}/cells.tsv", sample=IMAGING_SAMPLES),
        summary=expand("results/imaging/{sample}/summary.tsv", sample=IMAGING_SAMPLES),
        frames=expand("results/imaging/{sample}/frames.tsv", sample=IMAGING_SAMPLES),
        traces=expand("results/imaging/{sample}/traces.tsv.gz", sample=IMAGING_SAMPLES),
    output:
        cells="results/imaging/cells.tsv",
        summary="results/imaging/summary.tsv",
        frames="results/imaging/frames.tsv",
        traces="results/imaging/traces.tsv.gz",
    log:
        "logs/imaging/collect.log",
    threads: 1
    resources:
        mem_mb=lambda wc, input: 1000 + 4 * input_mb(input),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        outputs=lambda wc, output: outs(output),
    shell:
        "{params.zincassay} collect {params.outputs} {input:q} 2> {log:q}"
