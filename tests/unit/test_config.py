"""flag > S3SIGN_* env > YAML file > default, and clear errors naming file, key and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from s3sign.config import (
    KEYS,
    SECRET_KEYS,
    Settings,
    describe,
    env_name,
    load_settings,
)
from s3sign.config_file import find_config_file
from s3sign.errors import ConfigError, ExitCode, UsageError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    assert settings == Settings()
    assert settings.expires == 900
    assert settings.config_file is None
    assert all(source == "default" for _, _, source in describe(settings))


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    (tmp_path / "s3sign.yaml").write_text("region: eu-north-1\nexpires: 1h\naddressing: path\n")
    env = {"S3SIGN_REGION": "eu-west-3", "S3SIGN_EXPIRES": "30m"}
    settings = load_settings({"region": "ap-south-1"}, env=env, cwd=tmp_path)
    assert settings.region == "ap-south-1"
    assert settings.expires == 1800
    assert settings.addressing == "path"
    assert settings.checksum == "sha256"
    sources = {key: source for key, _, source in describe(settings)}
    assert sources["region"] == "flag"
    assert sources["expires"] == "env"
    assert sources["addressing"] == "file"
    assert sources["checksum"] == "default"


def test_file_lookup_order(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "s3sign").mkdir(parents=True)
    user_file = xdg / "s3sign" / "config.yaml"
    user_file.write_text("region: us-west-1\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {"XDG_CONFIG_HOME": str(xdg)}
    assert find_config_file(None, env=env, cwd=cwd) == user_file
    local = cwd / "s3sign.yaml"
    local.write_text("region: us-west-2\n")
    assert find_config_file(None, env=env, cwd=cwd) == local
    named = tmp_path / "named.yaml"
    named.write_text("region: eu-west-1\n")
    assert find_config_file(None, env={**env, "S3SIGN_CONFIG": str(named)}, cwd=cwd) == named
    flag = tmp_path / "flag.yaml"
    flag.write_text("")
    assert find_config_file(flag, env={**env, "S3SIGN_CONFIG": str(named)}, cwd=cwd) == flag


def test_home_config_is_found_without_xdg(tmp_path: Path) -> None:
    path = tmp_path / ".config" / "s3sign" / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text("region: sa-east-1\n")
    settings = load_settings(env={"HOME": str(tmp_path)}, cwd=tmp_path / "nowhere")
    assert settings.region == "sa-east-1"
    assert settings.config_file == path


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml \(--config\) does not exist") as info:
        load_settings(config_path=tmp_path / "missing.yaml", env={}, cwd=tmp_path)
    assert info.value.exit_code == ExitCode.CONFIG
    with pytest.raises(ConfigError, match="S3SIGN_CONFIG"):
        load_settings(env={"S3SIGN_CONFIG": str(tmp_path / "nope.yaml")}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("region: eu-west-1\nregoin: x\n", r"s3sign\.yaml:2: unknown key 'regoin'"),
        ("expires: [1, 2]\n", r"s3sign\.yaml:1: expires: .*not a duration|expected"),
        ("expires: 8d\n", r"s3sign\.yaml:1: expires: .*over 7d"),
        ("expires: 0\n", r"s3sign\.yaml:1: expires: .*longer than 0"),
        ("\n\naddressing: sideways\n", r"s3sign\.yaml:3: addressing: 'sideways' is not one of"),
        ("strict_expiry: maybe\n", r"s3sign\.yaml:1: strict_expiry: 'maybe' is not true or false"),
        ("endpoint_url: ftp://x\n", r"s3sign\.yaml:1: endpoint_url: .*not an http\(s\) URL"),
        ("region: a\nregion: b\n", r"s3sign\.yaml:2: region is set twice"),
        ("- just\n- a list\n", r"s3sign\.yaml:1: the file must be a mapping"),
        ("region: [unclosed\n", r"s3sign\.yaml:2: not valid YAML"),
        ("region: eu\x08west\n", r"s3sign\.yaml:1: not valid YAML"),  # a control character
    ],
)
def test_bad_file_values_name_file_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "s3sign.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(env={}, cwd=tmp_path)
    assert info.value.exit_code == ExitCode.CONFIG


def test_unreadable_yaml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "s3sign.yaml").write_bytes(b"region: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(env={}, cwd=tmp_path)


def test_empty_file_and_null_values_mean_defaults(tmp_path: Path) -> None:
    (tmp_path / "s3sign.yaml").write_text("# nothing yet\nregion:\n")
    assert load_settings(env={}, cwd=tmp_path).region is None


def test_bad_env_value_is_config_error_naming_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="S3SIGN_EXPIRES: 'soon' is not a duration") as info:
        load_settings(env={"S3SIGN_EXPIRES": "soon"}, cwd=tmp_path)
    assert "S3SIGN_EXPIRES" in info.value.hint


def test_bad_flag_value_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--expires: 'forever' is not a duration") as info:
        load_settings({"expires": "forever"}, env={}, cwd=tmp_path)
    assert info.value.exit_code == ExitCode.USAGE


def test_env_bool_and_duration_forms(tmp_path: Path) -> None:
    settings = load_settings(
        env={"S3SIGN_STRICT_EXPIRY": "yes", "S3SIGN_EXPIRES": "7d"}, cwd=tmp_path
    )
    assert settings.strict_expiry is True
    assert settings.expires == 7 * 86400


def test_example_config_documents_every_key_and_loads() -> None:
    example = REPO / "config.example.yaml"
    settings = load_settings(config_path=example, env={}, cwd=REPO)
    text = example.read_text()
    for key in KEYS:
        if key in SECRET_KEYS:
            assert env_name(key) in text, f"{key}: where it comes from is not documented"
            continue
        assert f"\n{key}:" in text or f"\n# {key}:" in text, f"{key} is not documented"
    assert settings.config_file == example


@pytest.mark.parametrize("key", sorted(SECRET_KEYS))
def test_a_secret_in_the_config_file_is_refused(tmp_path: Path, key: str) -> None:
    """The token and the server secret come from a flag or the environment, never from a
    file that is shared, checked in and printed."""
    path = tmp_path / "s3sign.yaml"
    path.write_text(f"{key}: {'s' * 40}\n")
    with pytest.raises(ConfigError, match=f"{key} is a secret") as caught:
        load_settings(env={}, cwd=tmp_path)
    assert env_name(key) in caught.value.hint
    assert "s" * 40 not in caught.value.message + caught.value.hint
    from_env = load_settings(env={env_name(key): "t" * 40}, cwd=Path("/"))
    assert getattr(from_env, key) == "t" * 40
    assert key not in {name for name, _, _ in describe(from_env)}  # never shown
    assert "t" * 40 not in repr(from_env)


def test_the_network_rules_come_from_the_environment_given() -> None:
    """Proxies and CA bundles are read by load_settings, from the environment it is given,
    and a bad proxy variable fails only the commands that make a call (sign makes none)."""
    env = {"https_proxy": "http://127.0.0.1:3128", "NO_PROXY": "10.0.0.0/8", "HOME": "/"}
    settings = load_settings(env=env, cwd=Path("/"))
    proxy = settings.transport.proxies.for_origin("https", "s3.example.com", 443)
    assert proxy is not None
    assert (proxy.host, proxy.port) == ("127.0.0.1", 3128)
    assert settings.transport.proxies.for_origin("https", "10.1.2.3", 443) is None
    broken = load_settings(env={"https_proxy": "http://[::1", "HOME": "/"}, cwd=Path("/"))
    with pytest.raises(ConfigError, match="https_proxy"):
        _ = broken.transport


def test_every_commented_example_value_is_valid(tmp_path: Path) -> None:
    """Uncommenting any ``# key: value`` example in config.example.yaml must load."""
    lines = (REPO / "config.example.yaml").read_text().splitlines()
    uncommented: list[str] = []
    block = False  # in an uncommented key's nested lines (oidc's list of rules)
    for line in lines:
        candidate = line.removeprefix("# ")
        key = candidate.split(":", 1)[0]
        block = (block and candidate.startswith("  ")) or (key in KEYS and candidate != line)
        uncommented.append(candidate if block else line)
    path = tmp_path / "all.yaml"
    path.write_text("\n".join(uncommented) + "\n")
    settings = load_settings(config_path=path, env={}, cwd=tmp_path)
    shown = {key for key, _, source in describe(settings) if source == "file"}
    assert shown == set(KEYS) - SECRET_KEYS


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3SIGN_PORT": "abc"}, "S3SIGN_PORT: 'abc' is not a whole number"),
        ({"S3SIGN_PORT": "70000"}, "outside 0..65535"),
        ({"S3SIGN_MAX_FILE_SIZE": "6TiB"}, "outside 0B..5TiB"),
        ({"S3SIGN_PART_SIZE": "1MiB"}, "outside 5MiB..5GiB"),
        ({"S3SIGN_TOKEN_TTL": "1s"}, "outside 60s..2592000s"),
        ({"S3SIGN_CONCURRENCY": "0"}, "outside 1..64"),
        ({"S3SIGN_KEY_PREFIX": "a/../b"}, "not a key prefix"),
        ({"S3SIGN_BACKEND": "localhost:8080"}, "not an http(s) URL"),
    ],
)
def test_server_and_push_keys_are_checked(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(env=env, cwd=tmp_path)


def test_yaml_numbers_and_sizes(tmp_path: Path) -> None:
    (tmp_path / "s3sign.yaml").write_text(
        "port: 9000\nmax_file_size: 1048576\npart_size: 8MiB\nkey_prefix: /ci/art/\n"
    )
    settings = load_settings(env={}, cwd=tmp_path)
    assert (settings.port, settings.max_file_size) == (9000, 1024**2)
    assert settings.part_size == 8 * 1024**2
    assert settings.key_prefix == "ci/art"
    (tmp_path / "s3sign.yaml").write_text("port: true\n")
    with pytest.raises(ConfigError, match="is not a whole number"):
        load_settings(env={}, cwd=tmp_path)
