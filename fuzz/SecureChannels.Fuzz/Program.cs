using SecureChannels.Fuzz;
using SharpFuzz;

// SecureChannels.Fuzz <target>                          run under afl-fuzz (SharpFuzz's in-process loop)
// SecureChannels.Fuzz <target> --replay <file-or-dir>   run inputs once, without AFL, and report what escaped
// SecureChannels.Fuzz <target|all> --write-seeds <dir>  write the target's seeds to <dir>/<target>/
// SecureChannels.Fuzz --list                            print the target names
if (args.Length == 1 && args[0] == "--list")
{
    foreach (var t in FuzzTargets.All)
    {
        Console.WriteLine(t.Name);
    }

    return 0;
}

if (args.Length == 0)
{
    Console.Error.WriteLine("usage: SecureChannels.Fuzz <target> [--replay <file-or-dir> | --write-seeds <dir>] | --list");
    return 2;
}

if (args.Length == 3 && args[1] == "--write-seeds")
{
    foreach (var t in args[0] == "all" ? FuzzTargets.All : [Target(args[0])])
    {
        var folder = Path.Combine(args[2], t.Name);
        Directory.CreateDirectory(folder);
        var n = 0;
        foreach (var seed in t.Seeds())
        {
            File.WriteAllBytes(Path.Combine(folder, $"seed-{n++:d3}"), seed);
        }

        Console.WriteLine($"{t.Name}: {n} seeds in {folder}");
    }

    return 0;
}

var target = Target(args[0]);
if (args.Length == 3 && args[1] == "--replay")
{
    var files = Directory.Exists(args[2]) ? Directory.GetFiles(args[2]).Order(StringComparer.Ordinal).ToArray() : [args[2]];
    var failed = 0;
    foreach (var file in files)
    {
        try
        {
            target.Run(File.ReadAllBytes(file));
        }
        catch (Exception e)
        {
            failed++;
            Console.WriteLine($"{file}: {e}");
        }
    }

    Console.WriteLine($"{target.Name}: {files.Length - failed} passed, {failed} failed");
    return failed == 0 ? 0 : 1;
}

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: SecureChannels.Fuzz <target> [--replay <file-or-dir> | --write-seeds <dir>] | --list");
    return 2;
}

var buffer = new MemoryStream();
var warm = false;
Fuzzer.Run(stream =>
{
    // The first execution runs every seed once before its input: the fixtures, lazy statics and JIT then cost nothing
    // later, so AFL sees the same path for the same input from then on. Instrumented code may run only in here, where
    // SharpFuzz has mapped AFL's coverage memory.
    if (!warm)
    {
        warm = true;
        foreach (var seed in target.Seeds())
        {
            try
            {
                target.Run(seed);
            }
            catch (Exception)
            {
                // A seed that fails is reported by --replay and the tests; here it only warms up.
            }
        }
    }

    buffer.SetLength(0);
    stream.CopyTo(buffer);
    target.Run(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
});
return 0;

static IFuzzTarget Target(string name) =>
    FuzzTargets.Find(name) ?? throw new ArgumentException($"Unknown target '{name}'. Known: {string.Join(", ", FuzzTargets.All.Select(t => t.Name))}.");
