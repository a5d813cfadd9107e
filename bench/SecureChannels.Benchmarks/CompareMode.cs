using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Perfolizer.Horology;

namespace SecureChannels.Benchmarks;

/// <summary>
/// <c>--compare</c>: runs the handshake, transport and primitive benchmarks with a short job, then prints the
/// protocol's costs as ratios of the primitives they are made of. Exit code 2 when a transport
/// Write+Read allocated, 1 when a benchmark failed.
/// </summary>
internal static class CompareMode
{
    public const string Switch = "--compare";

    private static readonly int[] Sizes = [64, 1024, 16384];

    private static readonly (string Cipher, string SealMethod)[] Ciphers =
    [
        ("ChaChaPoly", nameof(PrimitiveBenchmarks.ChaCha20Poly1305Seal)),
        ("AESGCM", nameof(PrimitiveBenchmarks.Aes256GcmSeal)),
    ];

    public static int Run()
    {
        var cpuBefore = CpuSample.Take();

        // Short but not ShortRun's 3 iterations: 6 iterations of 250 ms keep the whole run near 3 minutes on
        // 2 cores while the error column still means something.
        var job = Job.Default
            .WithId("Compare")
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(6)
            .WithIterationTime(TimeInterval.FromMilliseconds(250));
        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(job)
            .WithOptions(ConfigOptions.JoinSummary);

        var summaries = BenchmarkRunner.Run([typeof(HandshakeBenchmarks), typeof(TransportBenchmarks), typeof(PrimitiveBenchmarks)], config);
        var reports = summaries.SelectMany(s => s.Reports).ToList();
        var results = new Results(reports);

        var output = Console.Out;
        output.WriteLine();
        output.WriteLine("=== SecureChannels --compare ===");
        output.WriteLine(Invariant($"Machine: {Environment.ProcessorCount} logical cores. {CpuSample.Describe(cpuBefore, CpuSample.Take())}"));
        output.WriteLine("Anything else running (tests, builds) inflates and scatters these numbers; compare ratios from one run, not means across runs.");
        output.WriteLine();
        PrintResults(output, reports);
        output.WriteLine();
        PrintHandshakeRatios(output, results);
        output.WriteLine();
        PrintTransportRatios(output, results);
        output.WriteLine();

        var failed = reports.Where(r => !r.Success || r.ResultStatistics is null).ToList();
        foreach (var report in failed)
        {
            output.WriteLine($"FAILED: {Name(report)}");
        }

        var allocating = reports
            .Where(r => r.BenchmarkCase.Descriptor.Type == typeof(TransportBenchmarks))
            .Where(r => Allocated(r) is > 0)
            .ToList();
        foreach (var report in allocating)
        {
            output.WriteLine($"ALLOCATES: {Name(report)}: {FormatBytes(Allocated(report))} per operation; the transport path must allocate nothing.");
        }

        if (allocating.Count == 0 && failed.Count == 0)
        {
            output.WriteLine("Transport Write+Read: 0 B allocated per operation in every case.");
        }

        return allocating.Count > 0 ? 2 : failed.Count > 0 ? 1 : 0;
    }

    private static void PrintResults(TextWriter output, IReadOnlyList<BenchmarkReport> reports)
    {
        var rows = reports.Select(r => (Name: Name(r), Mean: FormatTime(r.ResultStatistics?.Mean), Error: FormatTime(r.ResultStatistics?.StandardError), Allocated: FormatBytes(Allocated(r)))).ToList();
        var nameWidth = rows.Max(r => r.Name.Length);
        output.WriteLine($"{"Benchmark".PadRight(nameWidth)} | {"Mean",12} | {"StdErr",10} | {"Allocated/op",12}");
        output.WriteLine($"{new string('-', nameWidth)}-|-{new string('-', 12)}-|-{new string('-', 10)}-|-{new string('-', 12)}");
        foreach (var (name, mean, error, allocated) in rows)
        {
            output.WriteLine($"{name.PadRight(nameWidth)} | {mean,12} | {error,10} | {allocated,12}");
        }
    }

    private static void PrintHandshakeRatios(TextWriter output, Results results)
    {
        double? Primitive(string method) => results.Mean(nameof(PrimitiveBenchmarks), method);
        var agree = Primitive(nameof(PrimitiveBenchmarks.X25519AgreeExport));
        var bare = Primitive(nameof(PrimitiveBenchmarks.X25519AgreeBare));
        var raw = Primitive(nameof(PrimitiveBenchmarks.SodiumScalarMult));
        var rawBase = Primitive(nameof(PrimitiveBenchmarks.SodiumScalarMultBase));
        var ourAgree = Primitive(nameof(PrimitiveBenchmarks.Curve25519DhAgree));
        var generate = Primitive(nameof(PrimitiveBenchmarks.Curve25519DhGenerateKeyPair));
        var import = Primitive(nameof(PrimitiveBenchmarks.Curve25519DhImportPrivateKey));
        var createKey = Primitive(nameof(PrimitiveBenchmarks.NSecCipherCreateKey));

        // One XX handshake, both sides: ee, es and se on each side (6 agreements), one ephemeral generation and
        // one static import per side (NoiseBuilder imports the static key on every build): 10 scalar
        // multiplications, 4 of them base-point ones. And 10 cipher keys: 3 MixKey and 2 Split per side.
        var model = (6 * ourAgree) + (2 * generate) + (2 * import) + (10 * createKey);
        var floor = (6 * raw) + (4 * rawBase);

        output.WriteLine("Handshake (both sides, 3 messages, ToTransport x2) against X25519:");
        output.WriteLine("  agree = NSec Agree + 32-byte export (as Curve25519Dh.Agree does); raw = libsodium crypto_scalarmult_curve25519 alone, no NSec objects.");
        output.WriteLine("  XX computes 6 DH (ee, es, se per side) plus 4 base-point multiplications (ephemeral generation, static import):");
        output.WriteLine("  \"10 x agree\" counts all 10 scalar multiplications as agreements; \"6 x agree\" counts only the DHs.");
        output.WriteLine("  model = 6 x Curve25519Dh.Agree + 2 x GenerateKeyPair + 2 x ImportPrivateKey + 10 x NSecCipher.CreateKey (the NSec calls the handshake makes);");
        output.WriteLine("  floor = 6 x raw + 4 x raw base-point multiplication (the curve arithmetic alone).");
        output.WriteLine($"{"Protocol",-34} | {"Handshake",10} | {"/ agree",8} | {"/ (10 x agree)",14} | {"/ (6 x agree)",13} | {"/ (10 x raw)",12} | {"model / hs",10} | {"floor / hs",10}");
        foreach (var protocol in new[] { NoisePeers.ChaChaPolyBlake2b, NoisePeers.AesGcmSha256 })
        {
            var handshake = results.Mean(nameof(HandshakeBenchmarks), nameof(HandshakeBenchmarks.Handshake), ("Protocol", protocol));
            output.WriteLine(Invariant($"{protocol,-34} | {FormatTime(handshake),10} | {Ratio(handshake, agree),8} | {Ratio(handshake, 10 * agree),14} | {Ratio(handshake, 6 * agree),13} | {Ratio(handshake, 10 * raw),12} | {Percent(model, handshake),10} | {Percent(floor, handshake),10}"));
        }

        output.WriteLine(Invariant($"NSec over raw libsodium: Curve25519Dh.Agree / raw = {Ratio(ourAgree, raw)}, bare Agree / raw = {Ratio(bare, raw)}, GenerateKeyPair / raw base = {Ratio(generate, rawBase)}, ImportPrivateKey / raw base = {Ratio(import, rawBase)}; NSecCipher.CreateKey = {FormatTime(createKey)} for a 32-byte key."));
    }

    private static void PrintTransportRatios(TextWriter output, Results results)
    {
        output.WriteLine("Transport Write+Read (one message, initiator writes, responder reads) against 2 x NSec seal of the same size:");
        output.WriteLine($"{"Cipher",-10} | {"Size",6} | {"Write+Read",10} | {"2 x ChaCha seal",15} | {"/ (2 x ChaCha)",14} | {"2 x own seal",12} | {"/ (2 x own)",11}");
        foreach (var (cipher, sealMethod) in Ciphers)
        {
            foreach (var size in Sizes)
            {
                var transport = results.Mean(nameof(TransportBenchmarks), nameof(TransportBenchmarks.WriteRead), ("Cipher", cipher), ("PayloadSize", size));
                var chacha = 2 * results.Mean(nameof(PrimitiveBenchmarks), nameof(PrimitiveBenchmarks.ChaCha20Poly1305Seal), ("size", size));
                var own = 2 * results.Mean(nameof(PrimitiveBenchmarks), sealMethod, ("size", size));
                output.WriteLine(Invariant($"{cipher,-10} | {size,6} | {FormatTime(transport),10} | {FormatTime(chacha),15} | {Ratio(transport, chacha),14} | {FormatTime(own),12} | {Ratio(transport, own),11}"));
            }
        }
    }

    private static long? Allocated(BenchmarkReport report) => report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);

    private static string Name(BenchmarkReport report)
    {
        var benchmark = report.BenchmarkCase;
        var parameters = string.Join(", ", benchmark.Parameters.Items.Select(p => Invariant($"{p.Name}={p.Value}")));
        var name = $"{benchmark.Descriptor.Type.Name}.{benchmark.Descriptor.WorkloadMethod.Name}";
        return parameters.Length == 0 ? name : $"{name}({parameters})";
    }

    private static string Ratio(double? numerator, double? denominator) =>
        numerator is { } n && denominator is { } d && d > 0 ? Invariant($"{n / d:F2}") : "n/a";

    private static string Percent(double? part, double? whole) =>
        part is { } p && whole is { } w && w > 0 ? Invariant($"{100 * p / w:F0} %") : "n/a";

    private static string FormatTime(double? nanoseconds) => nanoseconds switch
    {
        null => "n/a",
        < 1_000 => Invariant($"{nanoseconds:F1} ns"),
        < 1_000_000 => Invariant($"{nanoseconds / 1_000:F2} us"),
        _ => Invariant($"{nanoseconds / 1_000_000:F2} ms"),
    };

    private static string FormatBytes(long? bytes) => bytes is null ? "n/a" : Invariant($"{bytes:N0} B");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>Means by benchmark class, method and parameter values, in nanoseconds; null when the case is missing or failed.</summary>
    private sealed class Results(IReadOnlyList<BenchmarkReport> reports)
    {
        public double? Mean(string type, string method, params (string Name, object Value)[] parameters) =>
            reports.FirstOrDefault(r =>
                r.BenchmarkCase.Descriptor.Type.Name == type
                && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method
                && parameters.All(p => Equals(r.BenchmarkCase.Parameters[p.Name], p.Value)))
                ?.ResultStatistics?.Mean;
    }

    /// <summary>
    /// Linux CPU accounting, to tell how much of the machine something else used during the run: all CPUs'
    /// busy time (/proc/stat) minus this process's and its waited-for children's (/proc/self/stat), which
    /// include every benchmark process. Build servers the run started count as "others".
    /// </summary>
    private readonly record struct CpuSample(double Busy, double Steal, double Own, long Timestamp)
    {
        // USER_HZ: the unit of both files, 100 on every Linux the .NET runtime supports.
        private const double TicksPerSecond = 100;

        public static CpuSample? Take()
        {
            try
            {
                var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

                // user nice system idle iowait irq softirq steal ...
                var busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6];
                var self = File.ReadAllText("/proc/self/stat");
                var fields = self[(self.LastIndexOf(')') + 2)..].Split(' ');

                // After the command: state is field 3; utime, stime, cutime, cstime are fields 14 to 17.
                var own = fields.Skip(11).Take(4).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).Sum();
                return new CpuSample(busy / TicksPerSecond, cpu[7] / TicksPerSecond, own / TicksPerSecond, System.Diagnostics.Stopwatch.GetTimestamp());
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
            {
                return null;
            }
        }

        public static string Describe(CpuSample? before, CpuSample? after)
        {
            if (before is not { } b || after is not { } a)
            {
                return "CPU use of other processes: unknown (no /proc).";
            }

            var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(b.Timestamp, a.Timestamp).TotalSeconds;
            var others = Math.Max(0, (a.Busy - b.Busy) - (a.Own - b.Own));
            return Invariant($"During the {seconds:F0} s run, this run used {a.Own - b.Own:F0} CPU-s, other processes {others:F0} CPU-s (on average {others / seconds:F2} cores), hypervisor steal {a.Steal - b.Steal:F0} CPU-s.");
        }
    }
}
