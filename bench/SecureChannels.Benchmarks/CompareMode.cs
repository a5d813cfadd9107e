using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Perfolizer.Horology;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks;

/// <summary>
/// <c>--compare</c>: runs the Noise handshake and transport, identity and credential, secure channel, TLS and
/// primitive benchmarks with a short job, then prints the protocol's costs as ratios of the primitives they
/// are made of and of TLS 1.3, and where a channel message's allocations happen. Exit code 2 when a transport
/// Write+Read or a policy evaluation allocated, 1 when a benchmark failed.
/// </summary>
internal static class CompareMode
{
    public const string Switch = "--compare";

    private static readonly int[] Sizes = [64, 1024, 16384];

    private static readonly int[] MessageSizes = [64, 1024, 65536, 1048576];

    private static readonly string[] SizeParameters = ["size", "PayloadSize", "MessageSize"];

    private static readonly Type[] Benchmarks =
    [
        typeof(HandshakeBenchmarks),
        typeof(TransportBenchmarks),
        typeof(IdentityBenchmarks),
        typeof(CredentialBenchmarks),
        typeof(ChannelHandshakeBenchmarks),
        typeof(ChannelThroughputBenchmarks),
        typeof(TlsHandshakeBenchmarks),
        typeof(TlsThroughputBenchmarks),
        typeof(HandOffBenchmarks),
        typeof(PrimitiveBenchmarks),
    ];

    private static readonly (string Cipher, string SealMethod)[] Ciphers =
    [
        ("ChaChaPoly", nameof(PrimitiveBenchmarks.ChaCha20Poly1305Seal)),
        ("AESGCM", nameof(PrimitiveBenchmarks.Aes256GcmSeal)),
    ];

    public static int Run()
    {
        var cpuBefore = CpuSample.Take();
        var loadBefore = LoadAverage();

        // Short but not ShortRun's 3 iterations: 6 iterations of 250 ms keep the whole run near 5 minutes on
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

        var summaries = BenchmarkRunner.Run(Benchmarks, config);
        var reports = summaries.SelectMany(s => s.Reports).ToList();
        var results = new Results(reports);

        // In this process, after the benchmarks: a few seconds, and counted in the CPU accounting below.
        var probe = ChannelAllocationProbe.RunAsync(MessageSizes).GetAwaiter().GetResult();

        var output = Console.Out;
        output.WriteLine();
        output.WriteLine("=== SecureChannels --compare ===");
        output.WriteLine(Invariant($"Machine: {Environment.ProcessorCount} logical cores. {CpuSample.Describe(cpuBefore, CpuSample.Take())}"));
        output.WriteLine($"Load average (1, 5, 15 min) before: {loadBefore}; after: {LoadAverage()}.");
        output.WriteLine("Anything else running (tests, builds) inflates and scatters these numbers; compare ratios from one run, not means across runs.");
        output.WriteLine("MB/s = message bytes / mean time per operation, 1 MB = 10^6 bytes.");
        output.WriteLine();
        PrintResults(output, reports);
        output.WriteLine();
        PrintHandshakeRatios(output, results);
        output.WriteLine();
        PrintTransportRatios(output, results);
        output.WriteLine();
        PrintIdentityRatios(output, results);
        output.WriteLine();
        PrintChannelHandshakeRatios(output, results);
        output.WriteLine();
        PrintChannelThroughputRatios(output, results);
        output.WriteLine();
        PrintAllocationProbe(output, probe);
        output.WriteLine();

        var failed = reports.Where(r => !r.Success || r.ResultStatistics is null).ToList();
        foreach (var report in failed)
        {
            output.WriteLine($"FAILED: {Name(report)}");
        }

        var allocating = reports
            .Where(r => r.BenchmarkCase.Descriptor.Type == typeof(TransportBenchmarks)
                || (r.BenchmarkCase.Descriptor.Type == typeof(CredentialBenchmarks) && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == nameof(CredentialBenchmarks.EvaluatePolicy)))
            .Where(r => Allocated(r) is > 0)
            .ToList();
        foreach (var report in allocating)
        {
            output.WriteLine($"ALLOCATES: {Name(report)}: {FormatBytes(Allocated(report))} per operation; the transport path and policy evaluation must allocate nothing.");
        }

        if (allocating.Count == 0 && failed.Count == 0)
        {
            output.WriteLine("Transport Write+Read and policy evaluation: 0 B allocated per operation in every case.");
        }

        return allocating.Count > 0 ? 2 : failed.Count > 0 ? 1 : 0;
    }

    private static void PrintResults(TextWriter output, IReadOnlyList<BenchmarkReport> reports)
    {
        var rows = reports.Select(r => (
            Name: Name(r),
            Mean: FormatTime(r.ResultStatistics?.Mean),
            Error: FormatTime(r.ResultStatistics?.StandardError),
            Allocated: FormatBytes(Allocated(r)),
            Throughput: Size(r) is { } size ? FormatThroughput(size, r.ResultStatistics?.Mean) : string.Empty)).ToList();
        var nameWidth = rows.Max(r => r.Name.Length);
        output.WriteLine($"{"Benchmark".PadRight(nameWidth)} | {"Mean",12} | {"StdErr",10} | {"Allocated/op",12} | {"MB/s",9}");
        output.WriteLine($"{new string('-', nameWidth)}-|-{new string('-', 12)}-|-{new string('-', 10)}-|-{new string('-', 12)}-|-{new string('-', 9)}");
        foreach (var (name, mean, error, allocated, throughput) in rows)
        {
            output.WriteLine($"{name.PadRight(nameWidth)} | {mean,12} | {error,10} | {allocated,12} | {throughput,9}");
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
        var createKey = Primitive(nameof(PrimitiveBenchmarks.CipherCreateKey));

        // One XX handshake, both sides: ee, es and se on each side (6 agreements), one ephemeral generation and
        // one static import per side (NoiseBuilder imports the static key on every build): 10 scalar
        // multiplications, 4 of them base-point ones. And 10 cipher keys: 3 MixKey and 2 Split per side.
        var model = (6 * ourAgree) + (2 * generate) + (2 * import) + (10 * createKey);
        var floor = (6 * raw) + (4 * rawBase);

        output.WriteLine("Handshake (both sides, 3 messages, ToTransport x2) against X25519:");
        output.WriteLine("  agree = NSec Agree + 32-byte export (what Curve25519Dh.Agree did before it called libsodium directly); raw = libsodium crypto_scalarmult_curve25519 alone, no NSec objects.");
        output.WriteLine("  XX computes 6 DH (ee, es, se per side) plus 4 base-point multiplications (ephemeral generation, static import):");
        output.WriteLine("  \"10 x agree\" counts all 10 scalar multiplications as agreements; \"6 x agree\" counts only the DHs.");
        output.WriteLine("  model = 6 x Curve25519Dh.Agree + 2 x GenerateKeyPair + 2 x ImportPrivateKey + 10 x AeadCipher.CreateKey (the primitive calls the handshake makes);");
        output.WriteLine("  floor = 6 x raw + 4 x raw base-point multiplication (the curve arithmetic alone).");
        output.WriteLine($"{"Protocol",-34} | {"Handshake",10} | {"/ agree",8} | {"/ (10 x agree)",14} | {"/ (6 x agree)",13} | {"/ (10 x raw)",12} | {"model / hs",10} | {"floor / hs",10}");
        foreach (var protocol in new[] { NoisePeers.ChaChaPolyBlake2b, NoisePeers.AesGcmSha256 })
        {
            var handshake = results.Mean(nameof(HandshakeBenchmarks), nameof(HandshakeBenchmarks.Handshake), ("Protocol", protocol));
            output.WriteLine(Invariant($"{protocol,-34} | {FormatTime(handshake),10} | {Ratio(handshake, agree),8} | {Ratio(handshake, 10 * agree),14} | {Ratio(handshake, 6 * agree),13} | {Ratio(handshake, 10 * raw),12} | {Percent(model, handshake),10} | {Percent(floor, handshake),10}"));
        }

        output.WriteLine(Invariant($"NSec over raw libsodium: Curve25519Dh.Agree / raw = {Ratio(ourAgree, raw)}, bare Agree / raw = {Ratio(bare, raw)}, GenerateKeyPair / raw base = {Ratio(generate, rawBase)}, ImportPrivateKey / raw base = {Ratio(import, rawBase)}; AeadCipher.CreateKey = {FormatTime(createKey)} for a 32-byte key."));
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

    private static void PrintIdentityRatios(TextWriter output, Results results)
    {
        double? Primitive(string method) => results.Mean(nameof(PrimitiveBenchmarks), method);
        double? Credential(string method) => results.Mean(nameof(CredentialBenchmarks), method);
        var verify = Primitive(nameof(PrimitiveBenchmarks.Ed25519Verify));
        var sign = Primitive(nameof(PrimitiveBenchmarks.Ed25519Sign));
        var createKey = Primitive(nameof(PrimitiveBenchmarks.Ed25519CreateKey));
        var domainVerify = Credential(nameof(CredentialBenchmarks.SignatureDomainVerify));
        var identityModel = createKey + sign + verify;
        var chainFloor = CredentialBenchmarks.ChainSignatures * verify;
        var chainModel = CredentialBenchmarks.ChainSignatures * domainVerify;

        output.WriteLine("Identities and credentials against NSec Ed25519 (verify, sign, and Key.Create + Dispose, each timed alone):");
        output.WriteLine("  An identity costs one Ed25519 key creation, one signature and one verification (model = create key + sign + verify).");
        output.WriteLine(Invariant($"  A 3-hop chain verifies {CredentialBenchmarks.ChainSignatures} signatures: 3 credentials and the one change of each of the 2 delegating issuers' histories."));
        output.WriteLine("  SignatureDomain.Verify is one signature check as the verifier makes it (key import, domain prefix, verify).");
        output.WriteLine($"{"Operation",-38} | {"Mean",10} | {"Per second",11} | {"Allocated",10} | {"NSec floor",-38} | {"/ floor",7}");
        Row("Identity: create (signer included)", results.Mean(nameof(IdentityBenchmarks), nameof(IdentityBenchmarks.CreateIdentity)), results.Allocated(nameof(IdentityBenchmarks), nameof(IdentityBenchmarks.CreateIdentity)), "create key + sign + verify", identityModel);
        Row(Invariant($"Identity: swarm of {IdentityBenchmarks.SwarmSize}, per identity"), results.Mean(nameof(IdentityBenchmarks), nameof(IdentityBenchmarks.CreateSwarm)), results.Allocated(nameof(IdentityBenchmarks), nameof(IdentityBenchmarks.CreateSwarm)), "create key + sign + verify", identityModel);
        Row("Chain (3 hops): verify", Credential(nameof(CredentialBenchmarks.VerifyChain)), results.Allocated(nameof(CredentialBenchmarks), nameof(CredentialBenchmarks.VerifyChain)), Invariant($"{CredentialBenchmarks.ChainSignatures} x Ed25519 verify"), chainFloor);
        Row("Chain (3 hops): decode + verify", Credential(nameof(CredentialBenchmarks.DecodeAndVerifyChain)), results.Allocated(nameof(CredentialBenchmarks), nameof(CredentialBenchmarks.DecodeAndVerifyChain)), Invariant($"{CredentialBenchmarks.ChainSignatures} x Ed25519 verify"), chainFloor);
        Row("SignatureDomain.Verify (1 signature)", domainVerify, results.Allocated(nameof(CredentialBenchmarks), nameof(CredentialBenchmarks.SignatureDomainVerify)), "Ed25519 verify", verify);
        Row("Policy: evaluate", Credential(nameof(CredentialBenchmarks.EvaluatePolicy)), results.Allocated(nameof(CredentialBenchmarks), nameof(CredentialBenchmarks.EvaluatePolicy)), null, null);
        output.WriteLine(Invariant($"NSec: Ed25519 verify = {FormatTime(verify)}, sign = {FormatTime(sign)}, Key.Create + Dispose = {FormatTime(createKey)}."));
        output.WriteLine(Invariant($"Chain verify / ({CredentialBenchmarks.ChainSignatures} x SignatureDomain.Verify) = {Ratio(Credential(nameof(CredentialBenchmarks.VerifyChain)), chainModel)}: what the rest of the chain check (narrowing, revocation lookups, hops) adds above 1.00."));
        output.WriteLine(Invariant($"Policy: {CredentialBenchmarks.PolicyText}"));

        void Row(string operation, double? mean, long? allocated, string? floorName, double? floor) =>
            output.WriteLine(Invariant($"{operation,-38} | {FormatTime(mean),10} | {PerSecond(mean),11} | {FormatBytes(allocated),10} | {(floorName is null ? "-" : floorName + " = " + FormatTime(floor)),-38} | {(floorName is null ? "-" : Ratio(mean, floor)),7}"));
    }

    private static void PrintChannelHandshakeRatios(TextWriter output, Results results)
    {
        var ours = results.Mean(nameof(ChannelHandshakeBenchmarks), nameof(ChannelHandshakeBenchmarks.Handshake));
        var tls = results.Mean(nameof(TlsHandshakeBenchmarks), nameof(TlsHandshakeBenchmarks.Handshake));
        var noise = results.Mean(nameof(HandshakeBenchmarks), nameof(HandshakeBenchmarks.Handshake), ("Protocol", NoisePeers.ChaChaPolyBlake2b));
        output.WriteLine("Handshake, both sides, over a fresh in-memory connection, then both ends disposed:");
        output.WriteLine("  SecureChannel: Noise XX + identity, attestation and one-credential chain verified and policy evaluated on each side.");
        output.WriteLine("  TLS 1.3: SslStream, mutual ECDSA P-256 certificates pinned by thumbprint, no resumption (every handshake full).");
        output.WriteLine($"{"Handshake",-40} | {"Mean",10} | {"Per second",10} | {"Allocated",10}");
        output.WriteLine(Invariant($"{"SecureChannel",-40} | {FormatTime(ours),10} | {PerSecond(ours),10} | {FormatBytes(results.Allocated(nameof(ChannelHandshakeBenchmarks), nameof(ChannelHandshakeBenchmarks.Handshake))),10}"));
        output.WriteLine(Invariant($"{"TLS 1.3 mutual (SslStream)",-40} | {FormatTime(tls),10} | {PerSecond(tls),10} | {FormatBytes(results.Allocated(nameof(TlsHandshakeBenchmarks), nameof(TlsHandshakeBenchmarks.Handshake))),10}"));
        output.WriteLine(Invariant($"{"Noise XX alone (no I/O, no identities)",-40} | {FormatTime(noise),10} | {PerSecond(noise),10} | {FormatBytes(results.Allocated(nameof(HandshakeBenchmarks), nameof(HandshakeBenchmarks.Handshake), ("Protocol", NoisePeers.ChaChaPolyBlake2b))),10}"));
        output.WriteLine(Invariant($"Our handshake / TLS handshake = {Ratio(ours, tls)} (above 1.00: ours is slower). Our handshake / Noise XX alone = {Ratio(ours, noise)}."));
    }

    private static void PrintChannelThroughputRatios(TextWriter output, Results results)
    {
        output.WriteLine("Channel throughput: one message sent and received. SecureChannel: SendAsync, ReceiveAsync, Dispose of the message. TLS 1.3: a");
        output.WriteLine("length-prefixed write, read fully, over the same in-memory pipes. AEAD: ChaCha20-Poly1305 seal + open of the message, NSec (libsodium,");
        output.WriteLine("what the channel uses) and the BCL (OpenSSL on Linux, what TLS uses). Mean per message, then MB/s:");
        output.WriteLine($"{"Size",8} | {"Channel",17} | {"TLS ChaChaPoly",17} | {"TLS AESGCM",17} | {"NSec seal+open",17} | {"OpenSSL seal+open",17}");
        var rows = new List<(int Size, double? Ours, double? TlsChaCha, double? TlsAes, double? NSec, double? OpenSsl)>();
        foreach (var size in MessageSizes)
        {
            var row = (
                size,
                results.Mean(nameof(ChannelThroughputBenchmarks), nameof(ChannelThroughputBenchmarks.SendReceive), ("MessageSize", size)),
                results.Mean(nameof(TlsThroughputBenchmarks), nameof(TlsThroughputBenchmarks.WriteRead), ("Cipher", "ChaChaPoly"), ("MessageSize", size)),
                results.Mean(nameof(TlsThroughputBenchmarks), nameof(TlsThroughputBenchmarks.WriteRead), ("Cipher", "AESGCM"), ("MessageSize", size)),
                results.Mean(nameof(PrimitiveBenchmarks), nameof(PrimitiveBenchmarks.ChaCha20Poly1305SealOpen), ("size", size)),
                results.Mean(nameof(PrimitiveBenchmarks), nameof(PrimitiveBenchmarks.BclChaCha20Poly1305SealOpen), ("size", size)));
            rows.Add(row);
            output.WriteLine(Invariant($"{size,8} | {Cell(size, row.Item2),17} | {Cell(size, row.Item3),17} | {Cell(size, row.Item4),17} | {Cell(size, row.Item5),17} | {Cell(size, row.Item6),17}"));
        }

        output.WriteLine();
        output.WriteLine("Throughput ratios (our MB/s over theirs, so above 1.00 ours is faster) and allocations per message (all threads, harness included):");
        output.WriteLine($"{"Size",8} | {"/ TLS ChaChaPoly",16} | {"/ TLS AESGCM",12} | {"/ NSec AEAD",11} | {"TLS ChaChaPoly / OpenSSL AEAD",29} | {"Channel alloc",13} | {"TLS alloc",10}");
        foreach (var (size, ours, tlsChaCha, tlsAes, nsec, openSsl) in rows)
        {
            // Throughput is size / time, so one throughput over another is the other's time over the first's.
            var ourAllocated = results.Allocated(nameof(ChannelThroughputBenchmarks), nameof(ChannelThroughputBenchmarks.SendReceive), ("MessageSize", size));
            var tlsAllocated = results.Allocated(nameof(TlsThroughputBenchmarks), nameof(TlsThroughputBenchmarks.WriteRead), ("Cipher", "ChaChaPoly"), ("MessageSize", size));
            output.WriteLine(Invariant($"{size,8} | {Ratio(tlsChaCha, ours),16} | {Ratio(tlsAes, ours),12} | {Ratio(nsec, ours),11} | {Ratio(openSsl, tlsChaCha),29} | {FormatBytes(ourAllocated),13} | {FormatBytes(tlsAllocated),10}"));
        }

        var handOff = results.Mean(nameof(HandOffBenchmarks), nameof(HandOffBenchmarks.PumpAndInbox));
        var small = rows.FirstOrDefault(r => r.Size == 64).Ours;
        output.WriteLine(Invariant($"Hand-off floor: 64 bytes through a pipe, a pump task and a bounded channel to a waiting receiver, no crypto = {FormatTime(handOff)} ({Percent(handOff, small)} of the channel's 64-byte message); TLS reads in the caller and makes no such hand-off here."));

        static string Cell(int size, double? nanoseconds) => Invariant($"{FormatTime(nanoseconds)} {FormatThroughput(size, nanoseconds),6}");
    }

    private static void PrintAllocationProbe(TextWriter output, IReadOnlyList<ChannelAllocationProbe.Sample> samples)
    {
        output.WriteLine("Channel allocations per message, by where they happen (measured in this process after the benchmarks, without BenchmarkDotNet's harness):");
        output.WriteLine("  send call = sending thread inside SendAsync; receive call = receiving thread inside ReceiveAsync and the message's Dispose;");
        output.WriteLine("  elsewhere = every other thread: the channel's receive pump, pipe and thread-pool hand-offs; total = all threads.");
        output.WriteLine($"{"Size",8} | {"Messages",8} | {"Send call",10} | {"Receive call",12} | {"Elsewhere",10} | {"Total",10}");
        foreach (var sample in samples)
        {
            output.WriteLine(Invariant($"{sample.Size,8} | {sample.Messages,8} | {sample.SendCall,8:F1} B | {sample.ReceiveCall,10:F1} B | {sample.Elsewhere,8:F1} B | {sample.Total,8:F1} B"));
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

    private static int? Size(BenchmarkReport report) =>
        SizeParameters.Select(name => report.BenchmarkCase.Parameters[name]).OfType<int>().Cast<int?>().FirstOrDefault();

    private static string FormatThroughput(int size, double? nanoseconds) =>
        nanoseconds is { } ns && ns > 0 ? Invariant($"{size * 1e3 / ns:F1}") : "n/a";

    private static string PerSecond(double? nanoseconds) =>
        nanoseconds is { } ns && ns > 0 ? Invariant($"{1e9 / ns:N0}") : "n/a";

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

    /// <summary>Means (in nanoseconds) and allocations by benchmark class, method and parameter values; null when the case is missing or failed.</summary>
    private sealed class Results(IReadOnlyList<BenchmarkReport> reports)
    {
        public double? Mean(string type, string method, params (string Name, object Value)[] parameters) =>
            Find(type, method, parameters)?.ResultStatistics?.Mean;

        public long? Allocated(string type, string method, params (string Name, object Value)[] parameters) =>
            Find(type, method, parameters) is { } report ? CompareMode.Allocated(report) : null;

        private BenchmarkReport? Find(string type, string method, (string Name, object Value)[] parameters) =>
            reports.FirstOrDefault(r =>
                r.BenchmarkCase.Descriptor.Type.Name == type
                && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method
                && parameters.All(p => Equals(r.BenchmarkCase.Parameters[p.Name], p.Value)));
    }
}
