namespace SecureChannels.Protocol.Tests.Identity.Keys;

public static class KeyNameData
{
    public static TheoryData<string> Invalid => new()
    {
        "../x",
        "",
        "A",
        new string('a', 65),
        "x/y",
        "x\\y",
        ".hidden",
        "-dash",
        "_under",
        "has space",
        "caf\u00e9",
        "a\0b",
        "agent\n",
    };

    public static TheoryData<string> Valid => new()
    {
        "a",
        "0",
        "agent-1.main_key",
        "a..b",
        new string('z', 64),
    };
}
