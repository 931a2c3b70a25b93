rule zincflow_tube:
    input:
        **imported_gates("zincflow"),
        fcs=raw_file,
        checksum=checksum_file,
    output:
        status="results/zincflow/{sample}/status.json",
    log:
        "logs/zincflow/{sample}.tube.log",
    wildcard_constraints:
        sample=one_of(ZINCFLOW_TUBES),
    threads: 1
    resources:
        mem_mb=lambda wc, input: 500 + 20 * input_mb(input),
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("zincflow"),
        sheet=SHEET_FILE,
        row=sheet_row,
    shell:
        "{params.zincassay} zincflow-tube {input.fcs:q} --checksum {input.checksum:q} --sheet {params.sheet:q}"
        " --sample-id {wildcards.sample}"
        " --settings {params.settings:q} --status {output.status:q} 2> {log:q}"


rule zincflow_sample:
    input:
        unpack(zincflow_tubes),
        **imported_gates("zincflow"),
        fcs=raw_file,
        checksum=checksum_file,
    output:
        **zincflow_outputs(kinetic=False),
    log:
        "logs/zincflow/{sample}.log",
    wildcard_constraints:
        sample=one_of(ZINCFLOW_STATIC),
    threads: 1
    resources:
        mem_mb=lambda wc, input: 800 + 20 * input_mb(input),
        runtime=20,
    params:
        zincassay=ZINCASSAY,
        settings=settings("zincflow"),
        sheet=SHEET_FILE,
        row=sheet_row,
        tubes=lambda wc, input: flags(
            {
                k: v
                for k, v in input.items()
                if k not in ("fcs", "checksum", "gates_file")
                and not k.endswith("_checksum")
            }
        ),
        outputs=lambda wc, output: flags(output),
    shell:
        "{params.zincassay} zincflow-sample {input.fcs:q} --checksum {input.checksum:q} --sheet {params.sheet:q}"
        " --sample-id {wildcards.sample}"
        " --settings {params.settings:q} {params.tubes} {params.outputs} 2> {log:q}"


# a tube acquired across a stimulus (sheet: kinetic = yes): the same step, plus its kinetic trace
use rule zincflow_sample as zincflow_kinetic with:
    output:
        **zincflow_outputs(kinetic=True),
    wildcard_constraints:
        sample=one_of(ZINCFLOW_KINETIC),


rule zincflow_collect:
    input:
        zinc=expand("results/zincflow/{sample}/zinc.tsv", sample=ZINCFLOW_SAMPLES),
        gates=expand("results/zincflow/{sample}/gates.tsv", sample=ZINCFLOW_SAMPLES),
    output:
        zinc="results/zincflow/zinc.tsv",
        gates="results/zincflow/gates.tsv",
    log:
        "logs/zincflow/collect.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        outputs=lambda wc, output: outs(output),
    shell:
        "{params.zincassay} collect {params.outputs} {input:q} 2> {log:q}"


rule zincflow_collect_kinetics:
    input:
        kinetics=expand(
            "results/zincflow/{sample}/kinetics.tsv", sample=ZINCFLOW_KINETIC
        ),
        bins=expand(
            "results/zincflow/{sample}/kinetic_bins.tsv", sample=ZINCFLOW_KINETIC
        ),
    output:
        kinetics="results/zincflow/kinetics.tsv",
        bins="results/zincflow/kinetic_bins.tsv",
    log:
        "logs/zincflow/collect_kinetics.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        outputs=lambda wc, output: outs(output),
    shell:
        "{params.zincassay} collect {params.outputs} {input:q} 2> {log:q}"


# one row per sample, zn_nM per subset (per instrument unless zincflow.pool_instruments): what the
# conditions step compares
rule zincflow_readouts:
    input:
        zinc="results/zincflow/zinc.tsv",
    output:
        readouts="results/zincflow/readouts.tsv",
    log:
        "logs/zincflow/readouts.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        zincassay=ZINCASSAY,
        settings=settings("zincflow"),
    shell:
        "{params.zincassay} zincflow-readouts --zinc {input.zinc:q} --settings {params.settings:q}"
        " --out {output.readouts:q} 2> {log:q}"
