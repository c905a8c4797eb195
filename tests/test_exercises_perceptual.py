"""The perceptual-loss checkers accept a right answer and say what is wrong with a wrong one."""

import torch
import torch.nn.functional as F

from srlib.exercises.perceptual import check_adversarial_loss, check_content_loss, check_discriminator_verdict


def content_right(features, sr, hr, rescale):
    return ((features(sr) * rescale - features(hr) * rescale) ** 2).mean()


def content_wrong(features, sr, hr, rescale):  # forgets the rescaling
    return ((features(sr) - features(hr)) ** 2).mean()


def adversarial_right(fake_logits):
    return F.softplus(-fake_logits).mean()


def adversarial_naive(fake_logits):  # -log(sigmoid): overflows to inf for very negative logits
    return -torch.log(torch.sigmoid(fake_logits)).mean()


def verdict_right(real_logits, fake_logits):
    acc = ((real_logits > 0).float().sum() + (fake_logits <= 0).float().sum()) / (len(real_logits) + len(fake_logits))
    return torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), acc


def verdict_wrong(real_logits, fake_logits):  # counts only the real crops in the accuracy
    return torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), (real_logits > 0).float().mean()


def test_content_loss_checker():
    before = torch.random.get_rng_state()
    assert check_content_loss(content_right).passed
    assert torch.equal(torch.random.get_rng_state(), before)  # the checker leaves the global seed alone
    r = check_content_loss(content_wrong)
    assert len(r.failures) == 2 and r.failures[0].startswith("one 16x16 image, paper's rescaling 1/12.75: expected")
    assert "a batch of 3" not in " ".join(r.failures)  # rescale 1: the wrong answer happens to be right there
    pixel = check_content_loss(lambda f, sr, hr, s: F.mse_loss(sr, hr))
    assert len(pixel.failures) == 3


def test_adversarial_loss_checker():
    assert check_adversarial_loss(adversarial_right).passed
    r = check_adversarial_loss(adversarial_naive)
    assert r.failures == ["very confident discriminator (logits -200 and 50): "
                          "the result contains NaN or infinite values"]
    r = check_adversarial_loss(lambda logits: F.softplus(logits).mean())  # the discriminator's term, not G's
    assert len(r.failures) == 2 and "mixed logits: expected" in r.failures[0]


def test_discriminator_verdict_checker():
    assert check_discriminator_verdict(verdict_right).passed
    r = check_discriminator_verdict(verdict_wrong)
    assert r.failures == ["a fooled discriminator: expected [0.5805, 0.716 , 0.5   ], got [0.5805, 0.716 , 0.75  ] "
                          "(largest difference 0.25 at index (2,))"]
    r = check_discriminator_verdict(lambda real, fake: (real.mean(), fake.mean(), 1.0))  # logits, not probabilities
    assert len(r.failures) == 3


def test_checkers_report_a_stub():
    def stub(*args):
        raise NotImplementedError

    for checker in (check_content_loss, check_adversarial_loss, check_discriminator_verdict):
        assert "not implemented yet" in checker(stub).failures[0]
